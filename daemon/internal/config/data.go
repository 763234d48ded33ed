package config

import "errors"

// DataConfig is the data root shared by the annotation ingest and the trainer
// (data-seed/, data/, data-processed/, datasets/, data-corrupted/, data_deleted/).
type DataConfig struct {
	// Root is the data root (env AZAION_DATA_DIR). Default /var/lib/azaion/data.
	Root string `yaml:"root"`
}

func defaultData() DataConfig { return DataConfig{Root: "/var/lib/azaion/data"} }

func (c *DataConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_DATA_DIR"); ok {
		c.Root = v
	}
	return nil
}

func (c *DataConfig) validate() error {
	if c.Root == "" {
		return errors.New("config: data.root is empty")
	}
	return nil
}
