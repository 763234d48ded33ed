package config

import (
	"fmt"
	"strconv"

	"github.com/azaion/edge/sdk/pluginconfig"
	"github.com/azaion/edge/sdk/trainer"
)

// TrainerConfig configures the trainer/augmenter plugin (azaion-plugin-trainer)
// and the defaults of its jobs; a job request may override any parameter.
type TrainerConfig struct {
	// Enabled launches the trainer plugin and serves /v1/jobs (env AZAION_TRAINER=1).
	Enabled bool `yaml:"enabled"`
	// Watch keeps an augment job in watch mode running while the daemon runs
	// (continuous augmentation of new images; env AZAION_TRAINER_WATCH=1).
	Watch bool `yaml:"watch"`
	// Trainer is the plugin's own configuration (sdk/pluginconfig.Trainer),
	// handed to it as is: python, the training worker's interpreter.
	pluginconfig.Trainer `yaml:",inline"`
	// Validate are the label checks (background images allowed, tolerance),
	// used by validate jobs and before augmenting.
	Validate trainer.ValidateParams `yaml:"validate"`
	// Augment are the augmentation defaults: seed (env AZAION_TRAINER_SEED),
	// workers (env AZAION_TRAINER_WORKERS), variants, min_visible,
	// jpeg_quality, watch_seconds and each transform's probability and amount.
	Augment trainer.AugmentParams `yaml:"augment"`
	// Dataset are the split defaults: seed and train/valid/test fractions.
	Dataset trainer.DatasetParams `yaml:"dataset"`
	// Train are the training defaults: model, imgsz, epochs, batch, device,
	// patience, workers, seed and further Ultralytics args.
	Train trainer.TrainParams `yaml:"train"`
	// Export are the export defaults: formats, name, batch, dynamic, conf,
	// iou, max_det, rknn_platform, calibration.
	Export trainer.ExportParams `yaml:"export"`
	// Gate are the accuracy gate's defaults: max_drop_float (1.0 point of
	// mAP50-95), max_drop_int8 (3.0), split.
	Gate trainer.GateParams `yaml:"gate"`
}

func defaultTrainer() TrainerConfig {
	return TrainerConfig{
		Trainer:  pluginconfig.DefaultTrainer(),
		Validate: trainer.DefaultValidateParams(),
		Augment:  trainer.DefaultAugmentParams(),
		Dataset:  trainer.DefaultDatasetParams(),
		Train:    trainer.DefaultTrainParams(),
		Export:   trainer.DefaultExportParams(),
		Gate:     trainer.DefaultGateParams(),
	}
}

func (c *TrainerConfig) applyEnv(env LookupEnv) error {
	if v, ok := env("AZAION_TRAINER"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: AZAION_TRAINER: %q is not a boolean", v)
		}
		c.Enabled = b
	}
	if v, ok := env("AZAION_TRAINER_WATCH"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("config: AZAION_TRAINER_WATCH: %q is not a boolean", v)
		}
		c.Watch = b
	}
	if v, ok := env("AZAION_TRAINER_PYTHON"); ok {
		c.Python = v
	}
	if v, ok := env("AZAION_TRAINER_WORKERS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("config: AZAION_TRAINER_WORKERS: %q is not a number", v)
		}
		c.Augment.Workers = n
	}
	if v, ok := env("AZAION_TRAINER_SEED"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("config: AZAION_TRAINER_SEED: %q is not a number", v)
		}
		c.Augment.Seed, c.Dataset.Seed = n, n
	}
	return nil
}

func (c *TrainerConfig) validate() error {
	if c.Watch && !c.Enabled {
		return fmt.Errorf("config: trainer.watch needs trainer.enabled")
	}
	if err := c.Trainer.Validate(); err != nil {
		return fmt.Errorf("config: trainer.%w", err)
	}
	if err := c.Validate.Validate(); err != nil {
		return fmt.Errorf("config: trainer.validate: %w", err)
	}
	a := c.Augment
	a.Checks = c.Validate
	if err := a.Validate(); err != nil {
		return fmt.Errorf("config: trainer.augment: %w", err)
	}
	if err := c.Dataset.Validate(); err != nil {
		return fmt.Errorf("config: trainer.dataset: %w", err)
	}
	if err := c.Train.Validate(); err != nil {
		return fmt.Errorf("config: trainer.train: %w", err)
	}
	e := c.Export
	e.Run = "r" // a job names it
	if err := e.Validate(); err != nil {
		return fmt.Errorf("config: trainer.export: %w", err)
	}
	g := c.Gate
	g.Run = "r"
	if err := g.Validate(); err != nil {
		return fmt.Errorf("config: trainer.gate: %w", err)
	}
	return nil
}

// AugmentParams returns the configured augmentation with the configured label checks.
func (c *TrainerConfig) AugmentParams() trainer.AugmentParams {
	a := c.Augment
	a.Checks = c.Validate
	return a
}
