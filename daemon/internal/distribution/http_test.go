package distribution_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
)

func TestPullRoute(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "routed", "1")
	edge := e.edge(t, alice, e.hw)
	mux := http.NewServeMux()
	var loaded []string
	edge.Register(func(pattern string, h localapi.HandlerFunc) { mux.Handle(pattern, localapi.Handler(h)) }, func(ctx context.Context, m *modelstore.Manifest) error {
		loaded = append(loaded, m.ID())
		return nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := api.NewHTTPClient(srv.URL, "")
	ctx := context.Background()

	var stages []string
	if err := c.PullModel(ctx, api.ModelPullRequest{Name: "routed"}, func(p api.ModelPullProgress) {
		stages = append(stages, p.Stage)
	}); err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0] != "routed:1" || stages[len(stages)-1] != api.PullLoaded {
		t.Fatalf("loaded %v, stages %v", loaded, stages)
	}
	for _, tc := range []struct {
		name string
		req  api.ModelPullRequest
		want string
	}{
		{"unknown model", api.ModelPullRequest{Name: "nope", Version: "1"}, "small part"},
		{"bad name", api.ModelPullRequest{Name: "../etc"}, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.PullModel(ctx, tc.req, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if len(loaded) != 1 {
		t.Fatalf("a failed pull loaded something: %v", loaded)
	}
}
