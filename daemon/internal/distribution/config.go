package distribution

import (
	"log/slog"
	"path/filepath"

	"github.com/azaion/edge/daemon/internal/apiclient"
	"github.com/azaion/edge/daemon/internal/cdn"
	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/fingerprint"
	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/daemon/internal/modelstore"
)

// StoreDir returns the model store folder under the state folder.
func StoreDir(cfg *config.Config) string { return filepath.Join(cfg.Paths.State, "models") }

// LocalKeyFile returns the local key file under the state folder.
func LocalKeyFile(cfg *config.Config) string {
	return filepath.Join(cfg.Paths.State, "keys", "local.key")
}

// FromConfig builds a Service from the daemon configuration: the store
// always; the API client when api.url is set; the CDN reader and writer
// when their credentials are set. hardwareHash "" computes this machine's.
func FromConfig(cfg *config.Config, hardwareHash string, log *slog.Logger) (*Service, error) {
	if hardwareHash == "" {
		hardwareHash = fingerprint.Collect(fingerprint.Options{}).Hash
	}
	st, err := modelstore.Open(StoreDir(cfg))
	if err != nil {
		return nil, err
	}
	cred := keys.Credentials{Email: cfg.API.Email, Password: cfg.API.Password.Reveal()}
	s := &Service{Store: st, Log: log,
		Keys: modelstore.Keyring{Account: cred, LocalKeyFile: LocalKeyFile(cfg), HardwareHash: hardwareHash}}
	if cfg.API.URL != "" {
		s.API, err = apiclient.New(apiclient.Config{URL: cfg.API.URL, CAFile: cfg.API.CAFile, Credentials: cred,
			Timeout: cfg.API.Timeout, Logger: log})
		if err != nil {
			return nil, err
		}
	}
	if cfg.CDN.Endpoint != "" {
		cc := cdn.Config{Endpoint: cfg.CDN.Endpoint, Region: cfg.CDN.Region, Bucket: cfg.CDN.Bucket,
			CAFile: cfg.CDN.CAFile, PartSize: cfg.CDN.PartSize, Logger: log}
		if cfg.CDN.ReadKeyID != "" {
			if s.CDN, err = cdn.NewReader(cc, cdn.Credentials{KeyID: cfg.CDN.ReadKeyID, Secret: cfg.CDN.ReadSecret.Reveal()}); err != nil {
				return nil, err
			}
		}
		if cfg.CDN.WriteKeyID != "" {
			if s.CDNWriter, err = cdn.NewWriter(cc, cdn.Credentials{KeyID: cfg.CDN.WriteKeyID, Secret: cfg.CDN.WriteSecret.Reveal()}); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}
