package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/azaion/edge/sdk/api"
)

func init() {
	register(&command{Name: "train", Summary: "train a YOLO model on a dataset with the running daemon (then export, gate, publish)", Run: runTrain})
	register(&command{Name: "export", Summary: "export a training run's best.pt to ONNX / RKNN / TensorRT artifacts", Run: runExport})
	register(&command{Name: "gate", Summary: "evaluate a training run's artifacts against its best.pt (accuracy gate)", Run: runGate})
	register(&command{Name: "publish", Summary: "publish a training run's gated artifacts as one model version", Run: runPublish})
	register(&command{Name: "jobs", Summary: "list the daemon's jobs (newest first)", Run: runJobsList})
	register(&command{Name: "jobs log", Summary: "print a job's log (the training worker's output)", Run: runJobsLog})
}

// pipelineFlags are the flags that chain export, gate and publish jobs.
type pipelineFlags struct {
	export, override *string
	gate, publish    *bool
}

func addPipelineFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}, withExport bool) pipelineFlags {
	var pf pipelineFlags
	if withExport {
		pf.export = fs.String("export", "", "then export the run: formats, e.g. onnx,rknn (onnx, rknn, engine)")
	}
	pf.gate = fs.Bool("gate", false, "then run the accuracy gate on the exported artifacts")
	pf.publish = fs.Bool("publish", false, "then publish the gated artifacts as one model version")
	pf.override = fs.String("override", "", "publish even though the gate failed; the reason is logged and stored")
	return pf
}

// then returns the chained jobs the flags ask for.
func (pf pipelineFlags) then() []api.JobRequest {
	var out []api.JobRequest
	if pf.export != nil && *pf.export != "" {
		p, _ := json.Marshal(map[string]any{"formats": strings.Split(*pf.export, ",")})
		out = append(out, api.JobRequest{Type: api.JobExport, Params: p})
	}
	if *pf.gate {
		out = append(out, api.JobRequest{Type: api.JobGate})
	}
	if *pf.publish {
		var p json.RawMessage
		if *pf.override != "" {
			p, _ = json.Marshal(map[string]any{"override": *pf.override})
		}
		out = append(out, api.JobRequest{Type: api.JobPublish, Params: p})
	}
	return out
}

func runTrain(ctx context.Context, args []string) error {
	fs := newFlags("train")
	fs.String("dataset", "", "dataset folder under datasets/ (default: the newest azaion-*)")
	fs.String("model", "", "YOLO model yaml to train from scratch (default yolo11m.yaml) or the absolute path of a .pt to fine-tune")
	fs.Int("imgsz", 0, "image size (default 1280)")
	fs.Int("epochs", 0, "epochs (default 100)")
	fs.Int("batch", 0, "batch size (default: from the device's memory)")
	fs.String("device", "", "cpu, or CUDA device ids such as 0 or 0,1 (default: a GPU when present, else cpu)")
	fs.Int("patience", 0, "stop after this many epochs without improvement (default 50)")
	fs.Int("workers", 0, "data loader processes (default 8)")
	fs.Int("seed", 0, "random seed")
	fs.String("name", "", "run name under <state>/training/ (default: the start time)")
	fs.String("resume", "", "continue the run of this name from its last checkpoint")
	pf := addPipelineFlags(fs, true)
	jf := addJobFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion train [flags]\n\nTrains a YOLO model on a dataset (Ultralytics, in the daemon's training worker) into <state>/training/<run>/.\n"+
			"--export, --gate and --publish chain the next stages; each is its own job, and a failure stops the chain.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pf.override != "" && !*pf.publish {
		return usageErrorf("-override only goes with -publish")
	}
	params, err := jf.jobParams(setFlags(fs, map[string]string{"dataset": "dataset", "model": "model", "imgsz": "imgsz", "epochs": "epochs",
		"batch": "batch", "device": "device", "patience": "patience", "workers": "workers", "seed": "seed", "name": "name", "resume": "resume"}))
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobTrain, Params: params, Then: pf.then()}, *jf.detach, os.Stdout, os.Stderr)
}

func runExport(ctx context.Context, args []string) error {
	fs := newFlags("export")
	run := fs.String("run", "", "training run to export (required)")
	formats := fs.String("formats", "onnx", "formats: onnx, rknn, engine (comma-separated)")
	fs.String("name", "", "model name in the descriptors (default azaion)")
	fs.String("version", "", "model version (default: the run name)")
	fs.Int("imgsz", 0, "export size (default: the training size)")
	fs.Int("batch", 0, "fixed batch of the ONNX and TensorRT artifacts (default 4)")
	fs.String("rknn-platform", "", "Rockchip SoC of the RKNN artifact (default rk3588)")
	fs.Int("calibration", 0, "train-split images that calibrate INT8 (default 100)")
	pf := addPipelineFlags(fs, false)
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *run == "" {
		return usageErrorf("-run is required")
	}
	set := setFlags(fs, map[string]string{"name": "name", "version": "version", "imgsz": "imgsz", "batch": "batch",
		"rknn-platform": "rknn_platform", "calibration": "calibration"})
	set["run"] = *run
	set["formats"] = strings.Split(*formats, ",")
	params, err := jf.jobParams(set)
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobExport, Params: params, Then: pf.then()}, *jf.detach, os.Stdout, os.Stderr)
}

func runGate(ctx context.Context, args []string) error {
	fs := newFlags("gate")
	run := fs.String("run", "", "training run whose artifacts are evaluated (required)")
	fs.Float64("max-drop-float", 0, "largest mAP50-95 drop in points for FP32/FP16 artifacts (default 1.0)")
	fs.Float64("max-drop-int8", 0, "largest mAP50-95 drop in points for INT8 artifacts (default 3.0)")
	fs.String("split", "", "dataset split: test or valid (default test, valid when test is empty)")
	publish := fs.Bool("publish", false, "then publish the gated artifacts")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *run == "" {
		return usageErrorf("-run is required")
	}
	set := setFlags(fs, map[string]string{"max-drop-float": "max_drop_float", "max-drop-int8": "max_drop_int8", "split": "split"})
	set["run"] = *run
	params, err := jf.jobParams(set)
	if err != nil {
		return err
	}
	var then []api.JobRequest
	if *publish {
		then = append(then, api.JobRequest{Type: api.JobPublish})
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobGate, Params: params, Then: then}, *jf.detach, os.Stdout, os.Stderr)
}

func runPublish(ctx context.Context, args []string) error {
	fs := newFlags("publish")
	run := fs.String("run", "", "training run whose artifacts are published (required)")
	fs.String("override", "", "publish although the gate failed or did not run; the reason is logged and stored")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *run == "" {
		return usageErrorf("-run is required")
	}
	set := setFlags(fs, map[string]string{"override": "override"})
	set["run"] = *run
	params, err := jf.jobParams(set)
	if err != nil {
		return err
	}
	return runJob(ctx, jf.client(), api.JobRequest{Type: api.JobPublish, Params: params}, *jf.detach, os.Stdout, os.Stderr)
}

func runJobsList(ctx context.Context, args []string) error {
	fs := newFlags("jobs")
	asJSON := fs.Bool("json", false, "print the jobs as JSON")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	jobs, err := jf.client().ListJobs(ctx)
	if err != nil {
		return err
	}
	return printJobs(os.Stdout, jobs, *asJSON)
}

func printJobs(w io.Writer, jobs []api.Job, asJSON bool) error {
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(jobs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tRUN\tSTATE\tCREATED\tPROGRESS\tMESSAGE")
	for _, j := range jobs {
		msg := j.Message
		if j.Error != "" {
			msg = j.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f%%\t%s\n", j.ID, j.Type, j.Run, j.State, j.Created.Format("2006-01-02 15:04:05"), j.Progress*100, msg)
	}
	return tw.Flush()
}

func runJobsLog(ctx context.Context, args []string) error {
	fs := newFlags("jobs log")
	jf := addJobFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one job id: azaion jobs log ID")
	}
	b, err := jf.client().JobLog(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
