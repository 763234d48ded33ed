"""Damage an NMS-in-graph YOLO ONNX model for the accuracy-gate test: every
reported class id c becomes (c + 1) mod 3, as if the export had mixed up the
class order. Usage: swap_classes.py IN.onnx OUT.onnx"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

m = onnx.load(sys.argv[1])
g = m.graph
out = g.output[0].name
for n in g.node:
    for i, o in enumerate(n.output):
        if o == out:
            n.output[i] = out + "_raw"
g.initializer.extend([
    numpy_helper.from_array(np.array([0], np.int64), "sw_zero"),
    numpy_helper.from_array(np.array([5], np.int64), "sw_five"),
    numpy_helper.from_array(np.array([6], np.int64), "sw_six"),
    numpy_helper.from_array(np.array([2], np.int64), "sw_axis"),
    numpy_helper.from_array(np.array(1, np.float32), "sw_one"),
    numpy_helper.from_array(np.array(3, np.float32), "sw_three"),
])
g.node.extend([
    helper.make_node("Slice", [out + "_raw", "sw_zero", "sw_five", "sw_axis"], ["sw_rest"]),
    helper.make_node("Slice", [out + "_raw", "sw_five", "sw_six", "sw_axis"], ["sw_cls"]),
    helper.make_node("Add", ["sw_cls", "sw_one"], ["sw_cls1"]),
    helper.make_node("Mod", ["sw_cls1", "sw_three"], ["sw_cls2"], fmod=1),
    helper.make_node("Concat", ["sw_rest", "sw_cls2"], [out], axis=2),
])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
