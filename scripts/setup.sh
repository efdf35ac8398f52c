#!/usr/bin/env bash
# One-shot set-up on a fresh Debian/Ubuntu machine (run as root or with sudo available).
# - system: OpenCL on the CPU (pocl) so KaTrain's KataGo v1.18.1 OpenCL AppImage can run without a GPU;
# - python: torch 2.13.0 (local CPU wheel on these machines), then katadeploy with every CPU export target
#   (ONNX Runtime, LiteRT, Core ML tools, OpenVINO/NNCF) and its dev tools.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if command -v apt-get >/dev/null; then
  if ! dpkg -s pocl-opencl-icd ocl-icd-libopencl1 >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pocl-opencl-icd ocl-icd-libopencl1
  fi
fi
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[dev,all]"
