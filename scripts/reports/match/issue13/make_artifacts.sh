#!/usr/bin/env bash
# Re-export the FP32/FP16 players of run.sh (g170-b6c96 19x19, g170e-b15c192 9x9) into artifacts/ (deterministic: the
# same content fingerprint as the ledgers' headers). The openvino-int8 player is committed there as built on
# 2026-12-06 (AMD EPYC Zen 3) by
#   katadeploy export NET -t openvino-int8 --option int8_source=onnx-qdq --option int8_qat=off -o artifacts
# because its calibration is not bit-reproducible across CPUs. So is b6-int8g's onnx-int8 player (-g8: 8 activation
# groups with the clipping guard, the issue-11 note of 2026-12-07), built by
#   katadeploy export NET -t onnx-int8 --no-int8-fallback --option int8_act_groups=8 --option calib_positions=768
#     --option int8_hessian_positions=256
# and renamed to -g8 (its manifest's "artifact" field with it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
b6=$(cd "$here/../../../../../shared/models" && pwd)/g170-b6c96-s175395328-d26788732.bin.gz
katadeploy export "$b6" -t onnx-fp32 -t onnx-fp16 -t openvino-fp32 -o "$here/artifacts"
# g170e-b15c192's 9x9 players: graphs of a 9x9 tensor (--nn-size 9), 4.5x cheaper per eval than the 19x19 ones
katadeploy export g170e-b15c192 -t onnx-fp32 -t onnx-fp16 --nn-size 9 -o "$here/artifacts"
