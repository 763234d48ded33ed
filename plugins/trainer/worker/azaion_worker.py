#!/usr/bin/env python3
"""Training worker of the Azaion Edge trainer plugin.

The trainer plugin (Go, plugins/trainer) runs this script in the virtual
environment that `make deps` builds (scripts/deps/40-trainer-venv.sh), in a
process group of its own, once per job:

    python azaion_worker.py COMMAND SPEC.json

COMMAND is train, export, predict or probe; SPEC.json holds the job's
parameters with absolute paths. Structured progress goes out as JSON lines on
file descriptor AZAION_EVENTS_FD (one object per line, "event" names its
kind); everything else (Ultralytics' console output, warnings) is the job's
log. The last event is "result" (the command's output) or "error" (with the
message); a cancelled job (SIGTERM/SIGINT) ends with "canceled".

It uses Ultralytics (AGPL-3.0), installed in the venv from PyPI and never
vendored here. It reaches nothing on the network: the plugin starts it with
YOLO_OFFLINE=1, YOLO_AUTOINSTALL=0 and a private YOLO_CONFIG_DIR, and
configure_offline() turns off telemetry, integrations and plots (fonts).
"""

import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

_events = None
_cancelled = False


class Cancelled(BaseException):
    """Raised from the signal handler: the job was cancelled."""


class JobError(Exception):
    """A job error with a message for the user (no traceback needed)."""


def emit(kind, **fields):
    """Write one event line to the events descriptor."""
    fields["event"] = kind
    fields["time"] = time.time()
    line = json.dumps(fields, default=_jsonable, allow_nan=False, separators=(",", ":"))
    _events.write(line + "\n")
    _events.flush()


def _jsonable(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _finite(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _on_signal(signum, _frame):
    global _cancelled
    if _cancelled:
        return
    _cancelled = True
    raise Cancelled(signal.Signals(signum).name)


def configure_offline(config_dir):
    """Keep Ultralytics offline: settings in a private folder, no telemetry
    (sync), no integrations, runs and weights under the config folder."""
    for k, v in (("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "0")):
        if os.environ.get(k) != v:
            raise JobError(f"worker: {k} must be {v} in the environment (the trainer plugin sets it)")
    if not os.environ.get("YOLO_CONFIG_DIR"):
        raise JobError("worker: YOLO_CONFIG_DIR is not set")
    from ultralytics.utils import SETTINGS

    SETTINGS.update(
        {
            "sync": False,
            "api_key": "",
            "clearml": False,
            "comet": False,
            "dvc": False,
            "mlflow": False,
            "raytune": False,
            "tensorboard": False,
            "wandb": False,
            "vscode_msg": False,
            "openvino_msg": False,
            "runs_dir": str(Path(config_dir) / "runs"),
            "weights_dir": str(Path(config_dir) / "weights"),
            "datasets_dir": str(Path(config_dir) / "datasets"),
        }
    )


def atomic_write_bytes(path, data):
    """Write data to path through a temporary file, fsync and rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_copy(src, dst):
    atomic_write_bytes(dst, Path(src).read_bytes())


class _AtomicPath(type(Path())):
    """A path whose write_bytes is atomic: Ultralytics writes its checkpoints
    with Path.write_bytes, and a job killed mid-write must leave the previous
    checkpoint, not half a file."""

    def write_bytes(self, data):
        atomic_write_bytes(self, data)
        return len(data)


def select_device(requested):
    """Resolve the device: "" = the first CUDA GPU when there is one, else cpu."""
    import torch

    if requested in ("", "auto", None):
        return "0" if torch.cuda.is_available() else "cpu"
    if requested != "cpu":
        ids = [d.strip() for d in str(requested).replace("cuda:", "").split(",") if d.strip()]
        n = torch.cuda.device_count()
        for d in ids:
            if not d.isdigit() or int(d) >= n:
                have = f"{n} CUDA device(s)" if n else "no CUDA device"
                raise JobError(f"device {requested!r} is not present (this machine has {have}; use cpu)")
    return requested


# ---------------------------------------------------------------- train


def train_callbacks(model, spec):
    state = {"batch": 0, "t_epoch": time.time(), "images": 0, "t_start": time.time(), "images_total": 0}

    def pretrain_start(trainer):
        trainer.last = _AtomicPath(trainer.last)
        trainer.best = _AtomicPath(trainer.best)
        emit("start", save_dir=str(trainer.save_dir), epochs=trainer.epochs, start_epoch=trainer.start_epoch,
             device=str(trainer.device))

    def epoch_start(trainer):
        state["batch"] = 0
        state["images"] = 0
        state["t_epoch"] = time.time()

    def batch_end(trainer):
        state["batch"] += 1
        bs = trainer.batch_size
        state["images"] += bs
        state["images_total"] += bs
        nb = len(trainer.train_loader)
        el = time.time() - state["t_epoch"]
        losses = {}
        if trainer.tloss is not None:
            items = trainer.tloss.items() if isinstance(trainer.tloss, dict) else zip(trainer.loss_names, trainer.tloss)
            for k, v in items:
                f = _finite(v.item() if hasattr(v, "item") else v)
                if f is not None:
                    losses[str(k).replace("_loss", "")] = f
        emit("batch", epoch=trainer.epoch + 1, epochs=trainer.epochs, batch=state["batch"], batches=nb,
             images_per_s=state["images"] / el if el > 0 else 0.0, epoch_elapsed=el, losses=losses)

    def fit_epoch_end(trainer):
        m = trainer.metrics or {}
        metrics = {
            "precision": _finite(m.get("metrics/precision(B)")),
            "recall": _finite(m.get("metrics/recall(B)")),
            "map50": _finite(m.get("metrics/mAP50(B)")),
            "map50_95": _finite(m.get("metrics/mAP50-95(B)")),
        }
        losses = {}
        for k, v in (trainer.label_loss_items(trainer.tloss, prefix="train") or {}).items():
            f = _finite(v)
            if f is not None:
                losses[k.split("/")[-1].replace("_loss", "")] = f
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if trainer.epoch + 1 > trainer.epochs:  # final_eval: best.pt validated after the last epoch
            state["final"] = metrics
            emit("final", metrics=metrics, best=str(trainer.best))
            return
        emit("epoch", epoch=trainer.epoch + 1, epochs=trainer.epochs, metrics=metrics, losses=losses,
             epoch_time=_finite(getattr(trainer, "epoch_time", None)) or 0.0,
             elapsed=time.time() - state["t_start"])

    model.add_callback("on_pretrain_routine_start", pretrain_start)
    model.azaion_state = state
    model.add_callback("on_train_epoch_start", epoch_start)
    model.add_callback("on_train_batch_end", batch_end)
    model.add_callback("on_fit_epoch_end", fit_epoch_end)


def cmd_train(spec):
    from ultralytics import YOLO

    run_dir = Path(spec["run_dir"])
    weights = run_dir / "weights"
    if spec.get("resume"):
        last = weights / "last.pt"
        if not last.is_file():
            raise JobError(f"run {run_dir.name}: nothing to resume (no last.pt: no epoch finished yet)")
        model = YOLO(str(last))
        train_callbacks(model, spec)
        overrides = {"resume": True}
        if spec.get("device") is not None:
            overrides["device"] = select_device(spec.get("device"))
        if spec.get("workers") is not None:
            overrides["workers"] = spec["workers"]
        model.train(**overrides)
    else:
        device = select_device(spec.get("device"))
        src = spec["model"]
        try:
            model = YOLO(src, task="detect")
        except FileNotFoundError as e:
            raise JobError(f"model {src}: not found ({e}); want a YOLO model yaml Ultralytics knows (yolo11n.yaml ... yolo11x.yaml) or a .pt file")
        train_callbacks(model, spec)
        args = dict(spec.get("args") or {})
        args.update(
            data=spec["data"],
            imgsz=spec["imgsz"],
            epochs=spec["epochs"],
            batch=spec["batch"],
            device=device,
            patience=spec["patience"],
            workers=spec["workers"],
            seed=spec["seed"],
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            plots=False,
            verbose=True,
        )
        if device == "cpu":
            args["amp"] = False
        model.train(**args)
    best, last = weights / "best.pt", weights / "last.pt"
    if not best.is_file():
        raise JobError(f"run {run_dir.name}: training ended without best.pt")
    final = getattr(model, "azaion_state", {}).get("final") or {}
    if not final and (run_dir / "results.csv").is_file():
        final = last_results_row(run_dir / "results.csv")
    emit("result", run_dir=str(run_dir), best=str(best), last=str(last), metrics=final)


def last_results_row(path):
    import csv

    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    row = {k.strip(): v for k, v in rows[-1].items()}
    out = {}
    for key, name in (("metrics/precision(B)", "precision"), ("metrics/recall(B)", "recall"),
                      ("metrics/mAP50(B)", "map50"), ("metrics/mAP50-95(B)", "map50_95"), ("epoch", "epoch")):
        f = _finite(row.get(key))
        if f is not None:
            out[name] = f
    return out


# ---------------------------------------------------------------- export


def cmd_export(spec):
    """Export best.pt to each requested format into spec["out_dir"] (a
    temporary folder the plugin renames into place once all succeed)."""
    from ultralytics import YOLO

    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    name = spec["name"]
    imgsz = spec["imgsz"]
    produced = []
    formats = spec["formats"]
    for i, fmt in enumerate(formats):
        emit("stage", stage=f"export {fmt}", progress=i / len(formats))
        if fmt == "onnx":
            # Fixed batch with NMS in the graph (the seed's deployable format) ...
            produced.append(export_onnx(YOLO(spec["weights"]), spec, out / f"{name}.onnx", spec["batch"], False))
            # ... and the dynamic-batch variant.
            if spec.get("dynamic"):
                produced.append(export_onnx(YOLO(spec["weights"]), spec, out / f"{name}_dynamic.onnx", spec["batch"], True))
        elif fmt == "rknn":
            produced.append(export_rknn(YOLO(spec["weights"]), spec, out))
        elif fmt == "engine":
            produced.append(export_engine(YOLO(spec["weights"]), spec, out))
        else:
            raise JobError(f"export: unknown format {fmt!r}")
    emit("result", artifacts=produced, imgsz=imgsz)


def export_onnx(model, spec, dst, batch, dynamic):
    f = model.export(format="onnx", imgsz=spec["imgsz"], batch=batch, dynamic=dynamic, nms=True, simplify=True,
                     conf=spec["conf"], iou=spec["iou"], max_det=spec["max_det"], device="cpu", half=False)
    shutil.move(f, dst)
    return {"file": dst.name, "format": "onnx", "backend": "onnx", "precision": "fp32", "batch": 0 if dynamic else batch,
            "dynamic_batch": bool(dynamic), "output": "yolo-nms"}


def export_rknn(model, spec, out):
    """INT8 RKNN for the target SoC with Ultralytics' exporter (coordinates
    normalized so one per-tensor scale keeps the class scores), calibrated on
    images of the dataset's train split. The source ONNX and the calibration
    list are kept beside it: rknn-toolkit2's simulator cannot load an .rknn
    file, so the gate rebuilds the same model from them to evaluate it."""
    import ultralytics.utils.export.rknn as rk

    platform = spec["rknn_platform"]
    kept = {}
    orig = rk.onnx2rknn

    def keep_sources(onnx_file, output_dir, dataset=None, **kw):
        src = out / f"{spec['name']}-{platform}.src.onnx"
        atomic_copy(onnx_file, src)
        kept["onnx"] = src.name
        if dataset:
            lst = out / f"{spec['name']}-{platform}.calibration.txt"
            atomic_copy(dataset, lst)
            kept["dataset"] = lst.name
        return orig(onnx_file=onnx_file, output_dir=output_dir, dataset=dataset, **kw)

    rk.onnx2rknn = keep_sources
    try:
        d = model.export(format="rknn", name=platform, imgsz=spec["imgsz"], batch=1, quantize=8, data=spec["data"],
                         split="train", fraction=spec["calibration_fraction"], device="cpu")
    finally:
        rk.onnx2rknn = orig
    files = sorted(Path(d).glob("*.rknn"))
    if not files:
        raise JobError(f"rknn export wrote no .rknn file in {d}")
    dst = out / f"{spec['name']}-{platform}.rknn"
    shutil.move(str(files[0]), dst)
    shutil.rmtree(d, ignore_errors=True)
    import importlib.metadata as md

    return {"file": dst.name, "format": "rknn", "backend": "rknn", "device": platform, "precision": "int8", "batch": 1,
            "output": "yolo-raw-norm", "runtime": md.version("rknn-toolkit2"), "source_onnx": kept.get("onnx"),
            "calibration": kept.get("dataset")}


def export_engine(model, spec, out):
    import torch

    if not torch.cuda.is_available():
        raise JobError("export engine: TensorRT engines are built on the GPU they run on, and this machine has no CUDA GPU")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise JobError("export engine: TensorRT is not installed in the trainer's Python environment (pip install tensorrt)")
    major, minor = torch.cuda.get_device_capability(0)
    trt = tensorrt.__version__
    f = model.export(format="engine", imgsz=spec["imgsz"], batch=spec["batch"], half=True, nms=True, conf=spec["conf"],
                     iou=spec["iou"], max_det=spec["max_det"], device=0)
    dst = out / f"{spec['name']}_sm{major}{minor}_trt{trt}.engine"
    shutil.move(f, dst)
    return {"file": dst.name, "format": "engine", "backend": "tensorrt", "device": f"{major}.{minor}", "runtime": trt,
            "precision": "fp16", "batch": spec["batch"], "output": "yolo-nms"}


# ---------------------------------------------------------------- predict (gate)


def cmd_predict(spec):
    """Detections of one artifact (.pt or .engine with Ultralytics, .rknn through the
    rknn-toolkit2 simulator) on a list of images, in original pixels, written
    to spec["out"] as JSON: {"images": [{"image": path, "detections": [[x1,y1,x2,y2,score,class], ...]}]}."""
    images = spec["images"]
    kind = spec["kind"]
    if kind == "ultralytics":
        results = predict_pt(spec, images)
    elif kind == "rknn":
        results = predict_rknn(spec, images)
    else:
        raise JobError(f"predict: unknown artifact kind {kind!r}")
    atomic_write_bytes(spec["out"], json.dumps({"images": results}).encode())
    emit("result", out=spec["out"], images=len(results))


def predict_pt(spec, images):
    from ultralytics import YOLO

    model = YOLO(spec["weights"])
    device = select_device(spec.get("device"))
    out = []
    for i in range(0, len(images), 16):
        chunk = images[i:i + 16]
        for path, r in zip(chunk, model.predict(chunk, imgsz=spec["imgsz"], conf=spec["conf"], iou=spec["iou"],
                                                 max_det=spec["max_det"], device=device, verbose=False)):
            b = r.boxes
            dets = [[*map(float, xyxy), float(s), int(c)] for xyxy, s, c in zip(b.xyxy.tolist(), b.conf.tolist(), b.cls.tolist())]
            out.append({"image": path, "detections": dets})
        emit("progress", done=len(out), total=len(images))
    return out


def letterbox(img, size):
    import cv2
    import numpy as np

    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = (size - nw) / 2, (size - nh) / 2
    if (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return np.ascontiguousarray(img), r, left, top


def predict_rknn(spec, images):
    import cv2
    import numpy as np
    import torch
    import torchvision
    from rknn.api import RKNN

    size = spec["imgsz"]
    rknn = RKNN(verbose=False)
    ok = lambda ret, what: None if ret in (0, None) else (_ for _ in ()).throw(JobError(f"rknn {what} failed ({ret})"))
    ok(rknn.config(mean_values=[[0, 0, 0]], std_values=[[255, 255, 255]], target_platform=spec["rknn_platform"]), "config")
    ok(rknn.load_onnx(model=spec["source_onnx"]), "load_onnx")
    ok(rknn.build(do_quantization=True, dataset=spec["calibration"], rknn_batch_size=1), "build")
    ok(rknn.init_runtime(target=None), "init_runtime (simulator)")
    out = []
    try:
        for path in images:
            img = cv2.imread(path)
            if img is None:
                raise JobError(f"cannot read image {path}")
            lb, r, left, top = letterbox(img, size)
            rgb = cv2.cvtColor(lb, cv2.COLOR_BGR2RGB)
            y = rknn.inference(inputs=[rgb[None]], data_format="nhwc")[0][0]  # (4+nc, A), boxes normalized
            y = np.asarray(y, dtype=np.float32).T
            boxes, scores = y[:, :4] * size, y[:, 4:]
            cls = scores.argmax(1)
            conf = scores[np.arange(len(cls)), cls]
            keep = conf > spec["conf"]
            boxes, conf, cls = boxes[keep], conf[keep], cls[keep]
            xyxy = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1)
            t = torch.from_numpy(xyxy)
            idx = torchvision.ops.batched_nms(t, torch.from_numpy(conf), torch.from_numpy(cls), spec["iou"])
            idx = idx[: spec["max_det"]].numpy()
            dets = []
            h, w = img.shape[:2]
            for j in idx:
                x1, y1, x2, y2 = xyxy[j]
                x1, x2 = [min(max((v - left) / r, 0), w) for v in (x1, x2)]
                y1, y2 = [min(max((v - top) / r, 0), h) for v in (y1, y2)]
                dets.append([float(x1), float(y1), float(x2), float(y2), float(conf[j]), int(cls[j])])
            out.append({"image": path, "detections": dets})
            if len(out) % 8 == 0 or len(out) == len(images):
                emit("progress", done=len(out), total=len(images))
    finally:
        rknn.release()
    return out


# ---------------------------------------------------------------- probe


def cmd_probe(spec):
    """Versions and devices of this environment."""
    import importlib.metadata as md

    import torch

    info = {"python": sys.version.split()[0], "packages": {}, "cuda": torch.cuda.is_available(), "gpus": []}
    for p in ("ultralytics", "torch", "torchvision", "onnx", "onnxslim", "onnxruntime", "rknn-toolkit2", "tensorrt"):
        try:
            info["packages"][p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        info["gpus"].append({"name": p.name, "memory": p.total_memory, "capability": f"{p.major}.{p.minor}"})
    emit("result", **info)


COMMANDS = {"train": cmd_train, "export": cmd_export, "predict": cmd_predict, "probe": cmd_probe}


def main():
    global _events
    fd = int(os.environ.get("AZAION_EVENTS_FD", "1"))
    _events = os.fdopen(fd, "w", buffering=1) if fd != 1 else sys.stdout
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS:
        emit("error", message=f"usage: azaion_worker.py {{{','.join(COMMANDS)}}} SPEC.json")
        return 2
    try:
        spec = json.loads(Path(sys.argv[2]).read_text())
        configure_offline(os.environ["YOLO_CONFIG_DIR"])
        COMMANDS[sys.argv[1]](spec)
        return 0
    except Cancelled:
        emit("canceled")
        return 130
    except JobError as e:
        emit("error", message=str(e))
        return 1
    except BaseException as e:  # noqa: BLE001 - report every failure as an event
        if _cancelled:
            emit("canceled")
            return 130
        traceback.print_exc()
        emit("error", message=f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
