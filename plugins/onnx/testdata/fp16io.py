"""Makes a model with float16 input and output from a float32 YOLO ONNX model,
as an Ultralytics half=True export has them: a Cast to float32 after the
input and a Cast to float16 before the output. Used by the ONNX plugin's
tests (Debian's python3-onnx):

    /usr/bin/python3 fp16io.py IN.onnx OUT.onnx
"""
import sys

import onnx
from onnx import TensorProto, helper


def main(src, dst):
    m = onnx.load(src)
    g = m.graph
    inp, out = g.input[0], g.output[0]
    in_f32, out_f32 = inp.name + "_f32", out.name + "_f32"
    for n in g.node:
        n.input[:] = [in_f32 if x == inp.name else x for x in n.input]
        n.output[:] = [out_f32 if x == out.name else x for x in n.output]
    g.node.insert(0, helper.make_node("Cast", [inp.name], [in_f32], to=TensorProto.FLOAT, name="input_to_f32"))
    g.node.append(helper.make_node("Cast", [out_f32], [out.name], to=TensorProto.FLOAT16, name="output_to_f16"))
    inp.type.tensor_type.elem_type = TensorProto.FLOAT16
    out.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(m, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
