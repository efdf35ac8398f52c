# Issue 12 speed, re-measured 2026-12-06 on 2 cores of an AMD EPYC Zen 3 (AVX2, no AVX-512), idle box, one run each.
set -x
lscpu | grep "Model name"
ART=/tmp/b18/kata1-b18c384nbt-s6582191360-d3422816034-openvino-fp32.xml   # katadeploy export kata1-b18c384nbt -t openvino-fp32 -o /tmp/b18
EIGEN=/root/.cache/katadeploy/katago-build/eigen-v1.17.2-39c6670440f9/build/katago   # katadeploy katago build --backend eigen --source KataGo/ (v1.17.2)
time katadeploy bench nn $ART --model kata1-b18c384nbt --threads 2 --batch 1,8 --seconds 10 --katago $EIGEN --katago-threads 2,8 --katago-visits 50 --json nn.json --markdown nn.md
time katadeploy bench engine --model kata1-b18c384nbt --backend $ART --threads 8 --visits 100 --positions 3 --katago $EIGEN --no-progress --json eigen.json --markdown eigen.md --plot eigen.png
time katadeploy bench engine --model kata1-b18c384nbt --backend $ART --threads 8 --visits 100 --positions 3 --no-progress --json opencl.json --markdown opencl.md --plot opencl.png
