"""Writes the training benchmark's dataset: N images (default 200) of 160 px
with 1-3 filled rectangles, ellipses and triangles (classes 0, 1, 2) on
noise, with YOLO labels, as datasets/azaion-bench/{train,valid,test} under
a data root (80/10/10) with data.yaml. Usage: train_gen.py DATA_ROOT [N]."""
import os
import sys

import cv2
import numpy as np

root, n, S = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200, 160
rng = np.random.default_rng(1)
ds = os.path.join(root, "datasets", "azaion-bench")
splits = {"train": int(n * 0.8), "valid": n // 10, "test": n // 10}
for split, count in splits.items():
    os.makedirs(f"{ds}/{split}/images", exist_ok=True)
    os.makedirs(f"{ds}/{split}/labels", exist_ok=True)
    for i in range(count):
        img = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
        lines = []
        for _ in range(rng.integers(1, 4)):
            c = int(rng.integers(0, 3))
            w, h = (int(v) for v in rng.integers(24, 61, 2))
            x, y = int(rng.integers(0, S - w + 1)), int(rng.integers(0, S - h + 1))
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            if c == 0:
                cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), col, -1)
            elif c == 1:
                cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, col, -1)
            else:
                cv2.fillPoly(img, [np.array([[x + w // 2, y], [x, y + h - 1], [x + w - 1, y + h - 1]])], col)
            lines.append(f"{c} {(x + w / 2) / S:.6f} {(y + h / 2) / S:.6f} {w / S:.6f} {h / S:.6f}")
        cv2.imwrite(f"{ds}/{split}/images/{split}{i:04d}.jpg", img)
        with open(f"{ds}/{split}/labels/{split}{i:04d}.txt", "w") as f:
            f.write("\n".join(lines) + "\n")
names = ["Class%d" % i for i in range(80)]
with open(f"{ds}/data.yaml", "w") as f:
    f.write(f"path: {ds}\ntrain: train/images\nval: valid/images\ntest: test/images\nnc: 80\nnames: {names}\n")
print(splits["train"])
