#!/usr/bin/python3
"""Reference augmentation in Python + OpenCV for bench/augment.sh.

Applies the same transforms as the Go trainer plugin (plugins/trainer) with the
same default parameters: per variant, each of flip, rotation, scale/translate,
perspective, brightness/contrast, hue/saturation, blur and noise with its
probability (at least one), geometry composed into one warp, boxes moved by
their four corners and clipped/dropped, outputs written temp + fsync + rename.
Its random draws differ from Go's (another generator); the work is the same.

Usage: augment_ref.py DATA_ROOT [--workers N] [--seed S] [--gen N]
  --gen N   write N 1280x720 JPEGs with labels to DATA_ROOT/data and exit.
"""
import argparse
import hashlib
import math
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time

import cv2
import numpy as np

P = dict(variants=7, min_visible=0.3, jpeg_quality=90,
         flip_p=0.5, rotate_p=0.5, rotate_deg=15, scale_p=0.5, scale=0.2, translate=0.1,
         perspective_p=0.3, perspective=0.05, brightness_p=0.5, brightness=0.15, contrast=0.2,
         hsv_p=0.5, hue=10, saturation=0.3, blur_p=0.3, blur_max=5, noise_p=0.3, noise_std=8)


def T(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)


def plan(seed, key, k, w, h):
    h_ = int.from_bytes(hashlib.blake2b(f"{seed}/{key}/{k}".encode(), digest_size=8).digest(), "little")
    r = random.Random(h_)
    probs = [P["flip_p"], P["rotate_p"], P["scale_p"], P["perspective_p"], P["brightness_p"], P["hsv_p"], P["blur_p"], P["noise_p"]]
    on = [r.random() < p for p in probs]
    if not any(on):
        on[r.randrange(8)] = True
    u = lambda a: (r.random() * 2 - 1) * a
    cx, cy = w / 2, h / 2
    m = np.eye(3)
    if on[0]:
        m = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    if on[1]:
        th = math.radians(u(P["rotate_deg"]))
        c, s = math.cos(th), math.sin(th)
        m = T(cx, cy) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ T(-cx, -cy) @ m
    if on[2]:
        sc = 1 + u(P["scale"])
        tx, ty = u(P["translate"]) * w, u(P["translate"]) * h
        m = T(cx + tx, cy + ty) @ np.diag([sc, sc, 1.0]) @ T(-cx, -cy) @ m
    if on[3]:
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = src + np.float32([[u(P["perspective"]) * w, u(P["perspective"]) * h] for _ in range(4)])
        m = cv2.getPerspectiveTransform(src, dst).astype(np.float64) @ m
    pl = dict(geo=m, has_geo=any(on[:4]), flip_only=on[0] and not any(on[1:4]))
    if on[4]:
        pl["bc"] = (1 + u(P["contrast"]), u(P["brightness"]) * 255)
    if on[5]:
        pl["hsv"] = (u(P["hue"]) / 2, 1 + u(P["saturation"]))
    if on[6]:
        pl["blur"] = 3 + 2 * r.randrange((P["blur_max"] - 3) // 2 + 1)
    if on[7]:
        pl["noise"] = (P["noise_std"] * (0.5 + r.random() / 2), r.randrange(1 << 31))
    return pl


def apply(img, pl):
    h, w = img.shape[:2]
    if pl["has_geo"]:
        if pl["flip_only"]:
            img = cv2.flip(img, 1)
        else:
            cv = T(-0.5, -0.5) @ pl["geo"] @ T(0.5, 0.5)
            if abs(cv[2, 0]) < 1e-15 and abs(cv[2, 1]) < 1e-15:
                img = cv2.warpAffine(img, cv[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            else:
                img = cv2.warpPerspective(img, cv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if "bc" in pl:
        a, b = pl["bc"]
        lut = np.clip(np.round(np.arange(256) * a + b), 0, 255).astype(np.uint8)
        img = cv2.LUT(img, lut)
    if "hsv" in pl:
        dh, ss = pl["hsv"]
        i = np.arange(256)
        hl = np.where(i < 180, np.mod(np.round(i + dh), 180), i)
        sl = np.clip(np.round(i * ss), 0, 255)
        lut = np.stack([hl, sl, i], axis=-1).astype(np.uint8).reshape(1, 256, 3)
        img = cv2.cvtColor(cv2.LUT(cv2.cvtColor(img, cv2.COLOR_BGR2HSV), lut), cv2.COLOR_HSV2BGR)
    if "blur" in pl:
        k = pl["blur"]
        img = cv2.GaussianBlur(img, (k, k), 0)
    if "noise" in pl:
        std, seed = pl["noise"]
        noise = np.empty_like(img)
        cv2.setRNGSeed(seed)
        cv2.randn(noise, (128, 128, 128), (std, std, std))
        img = cv2.addWeighted(img, 1, noise, 1, -128)
    return img


def move_boxes(boxes, m, w, h):
    out = []
    for c, cx, cy, bw, bh in boxes:
        x1, y1, x2, y2 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
        pts = np.array([[x1, y1, 1], [x2, y1, 1], [x2, y2, 1], [x1, y2, 1]]) @ m.T
        xs, ys = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
        area = (xs.max() - xs.min()) * (ys.max() - ys.min())
        a1, b1, a2, b2 = max(xs.min(), 0), max(ys.min(), 0), min(xs.max(), w), min(ys.max(), h)
        if area <= 0 or a2 - a1 < 1 or b2 - b1 < 1 or (a2 - a1) * (b2 - b1) / area < P["min_visible"]:
            continue
        out.append((c, (a1 + a2) / 2 / w, (b1 + b2) / 2 / h, (a2 - a1) / w, (b2 - b1) / h))
    return out


def write_atomic(tmpdir, path, data):
    fd, tmp = tempfile.mkstemp(dir=tmpdir)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def fmt(boxes):
    return "".join("%d %.6f %.6f %.6f %.6f\n" % b for b in boxes).encode()


def work(args):
    root, name, seed = args
    src = os.path.join(root, "data", "images", name)
    stem = os.path.splitext(name)[0]
    out, tmp = os.path.join(root, "data-processed"), os.path.join(root, "data-processed", ".tmp")
    boxes = []
    lp = os.path.join(root, "data", "labels", stem + ".txt")
    if os.path.exists(lp):
        for line in open(lp):
            f = line.split()
            if len(f) == 5:
                boxes.append((int(f[0]), *map(float, f[1:])))
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    write_atomic(tmp, os.path.join(out, "images", name), open(src, "rb").read())
    write_atomic(tmp, os.path.join(out, "labels", stem + ".txt"), fmt(boxes))
    for k in range(1, P["variants"] + 1):
        pl = plan(seed, stem, k, w, h)
        res = apply(img, pl)
        nb = move_boxes(boxes, pl["geo"], w, h) if pl["has_geo"] else boxes
        ok, buf = cv2.imencode(".jpg", res, [cv2.IMWRITE_JPEG_QUALITY, P["jpeg_quality"]])
        write_atomic(tmp, os.path.join(out, "images", "%s_aug%d.jpg" % (stem, k)), buf.tobytes())
        write_atomic(tmp, os.path.join(out, "labels", "%s_aug%d.txt" % (stem, k)), fmt(nb))
    return name


def generate(root, n):
    os.makedirs(os.path.join(root, "data", "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "data", "labels"), exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        img = np.zeros((720, 1280, 3), np.uint8)
        img[:] = rng.integers(40, 200, 3)
        img = cv2.add(img, rng.integers(0, 40, (720, 1280, 3), dtype=np.uint8))
        lines = []
        for _ in range(int(rng.integers(1, 6))):
            bw, bh = int(rng.integers(40, 300)), int(rng.integers(40, 200))
            x, y = int(rng.integers(0, 1280 - bw)), int(rng.integers(0, 720 - bh))
            cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), [int(v) for v in rng.integers(0, 255, 3)], -1)
            lines.append("%d %.6f %.6f %.6f %.6f\n" % (int(rng.integers(0, 17)), (x + bw / 2) / 1280, (y + bh / 2) / 720, bw / 1280, bh / 720))
        cv2.imwrite(os.path.join(root, "data", "images", "img%04d.jpg" % i), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        open(os.path.join(root, "data", "labels", "img%04d.txt" % i), "w").write("".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gen", type=int, default=0)
    a = ap.parse_args()
    if a.gen:
        generate(a.root, a.gen)
        return
    for d in ("images", "labels", ".tmp"):
        os.makedirs(os.path.join(a.root, "data-processed", d), exist_ok=True)
    names = sorted(n for n in os.listdir(os.path.join(a.root, "data", "images")) if n.endswith(".jpg"))
    cv2.setNumThreads(1)  # one process per core, as the Go workers
    t0 = time.monotonic()
    with mp.Pool(a.workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        for _ in pool.imap_unordered(work, [(a.root, n, a.seed) for n in names], chunksize=4):
            pass
    el = time.monotonic() - t0
    print("python images=%d outputs=%d seconds=%.3f images_per_s=%.2f" % (len(names), len(names) * (P["variants"] + 1), el, len(names) / el))


if __name__ == "__main__":
    sys.exit(main())
