"""Issue 11 probe: which activation Q/DQ of an onnx-int8 graph clips on given validation positions.

For every activation ``QuantizeLinear`` of the graph (u8: range ``[-zp s, (255 - zp) s]``) it prints the ratio of the
input's extreme to the range's edge (> 1: clipped) on each named position, the five largest, and the largest over
the whole set. Measured 2026-12-07 on g170-b6c96, 8 groups, floor 0.5, 1536 positions of the widened every-size
calibration (seed 1): the fresh set's KL-worst position (val237-game39, 1.27x the KL max limit) clips
``blocks.5/conv2`` group 4 at 1.36x its range; its ownership-worst position (val255-game41) clips nothing (max
0.90x): one tail is clipping, the other rounding.

Usage: python scripts/reports/int8/group_clip.py ART.onnx NET.bin.gz (oracle|CALIB.npz) [POSITION-ID ...]
(ids as ``katadeploy validate`` names them: ``val237-game39``, or ``FineArt_0084.sgf@190`` for the oracle)
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from katadeploy.model.format import load_model
from katadeploy.validate.positions import load_validation_set

art, net, pos, *ids = sys.argv[1:]
m = onnx.load(art)
inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
have = {o.name for o in m.graph.output}
for n in qs:
    if n.input[0] not in have:
        m.graph.output.append(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
model = load_model(net)
vs = load_validation_set(None if pos == "oracle" else pos, model)
names = [i.name for i in sess.get_inputs()]


def feed(idx):
    f = {}
    for nm in names:
        if "spatial" in nm:
            f[nm] = vs.spatial[idx]
        elif "global" in nm:
            f[nm] = vs.global_[idx]
        else:
            f[nm] = vs.meta[idx]
    return f


outs = [n.input[0] for n in qs]


def ratios(idx):
    res = sess.run(outs, feed(idx))
    r = []
    for n, x in zip(qs, res):
        s = float(inits[n.input[1]])
        zp = float(inits[n.input[2]]) if len(n.input) > 2 else 0.0
        hi, lo = (255 - zp) * s, -zp * s
        r.append(max(x.max() / hi if hi > 0 else 0, x.min() / lo if lo < 0 else 0))
    return np.array(r)


allidx = np.arange(len(vs))
base = np.max(np.stack([ratios(allidx[i : i + 32]) for i in range(0, len(vs), 32)]), axis=0)
for pid in ids:
    j = vs.ids.index(pid)
    r = ratios(np.array([j]))
    top = np.argsort(-r)[:5]
    print(pid, [(outs[k][-40:], round(float(r[k]), 3)) for k in top])
print("max over the set:", [(outs[k][-40:], round(float(base[k]), 3)) for k in np.argsort(-base)[:8]])
