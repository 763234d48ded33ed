package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainerConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		err        string
		check      func(t *testing.T, c *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			if c.Trainer.Enabled || c.Trainer.Augment.Variants != 7 || c.Trainer.Dataset.Train != 0.7 || !c.Trainer.Validate.AllowBackground {
				t.Fatalf("%+v", c.Trainer)
			}
		}},
		{name: "yaml", yaml: "trainer:\n  enabled: true\n  validate:\n    allow_background: false\n  augment:\n    workers: 3\n    min_visible: 0.5\n    rotate_deg: 5\n  dataset:\n    train: 0.8\n    valid: 0.1\n    test: 0.1\n",
			check: func(t *testing.T, c *Config) {
				a := c.Trainer.AugmentParams()
				if !c.Trainer.Enabled || a.Workers != 3 || a.MinVisible != 0.5 || a.RotateDeg != 5 || a.FlipP != 0.5 || a.Checks.AllowBackground || c.Trainer.Dataset.Train != 0.8 {
					t.Fatalf("%+v", c.Trainer)
				}
			}},
		{name: "env", env: map[string]string{"AZAION_TRAINER": "1", "AZAION_TRAINER_WORKERS": "4", "AZAION_TRAINER_SEED": "9"},
			check: func(t *testing.T, c *Config) {
				if !c.Trainer.Enabled || c.Trainer.Augment.Workers != 4 || c.Trainer.Augment.Seed != 9 || c.Trainer.Dataset.Seed != 9 {
					t.Fatalf("%+v", c.Trainer)
				}
			}},
		{name: "watch without enabled", yaml: "trainer:\n  watch: true\n", err: "trainer.watch needs trainer.enabled"},
		{name: "watch env", env: map[string]string{"AZAION_TRAINER": "true", "AZAION_TRAINER_WATCH": "1"},
			check: func(t *testing.T, c *Config) {
				if !c.Trainer.Watch {
					t.Fatal("watch not set")
				}
			}},
		{name: "bad env", env: map[string]string{"AZAION_TRAINER_WORKERS": "many"}, err: "AZAION_TRAINER_WORKERS"},
		{name: "bad fraction", yaml: "trainer:\n  dataset:\n    train: 0.9\n", err: "trainer.dataset"},
		{name: "bad quality", yaml: "trainer:\n  augment:\n    jpeg_quality: 0\n", err: "trainer.augment: bad job spec: jpeg_quality"},
		{name: "unknown field", yaml: "trainer:\n  augment:\n    rotation: 3\n", err: "rotation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = filepath.Join(t.TempDir(), "azaion.yaml")
				os.WriteFile(path, []byte(tc.yaml), 0o600)
			}
			c := Default()
			var err error
			if path != "" {
				b, _ := os.ReadFile(path)
				err = decodeStrict(b, &c)
			}
			if err == nil {
				err = c.applyEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			}
			if err == nil {
				err = c.Validate()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &c)
		})
	}
}
