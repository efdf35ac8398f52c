# katadeploy for x86-64 CPUs: ONNX Runtime, OpenVINO (+NNCF), LiteRT and Core ML export.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends pocl-opencl-icd ocl-icd-libopencl1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/katadeploy
COPY pyproject.toml README.md ./
COPY katadeploy ./katadeploy
# the CPU build of torch first, so nothing pulls the CUDA wheels
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install ".[all]"
WORKDIR /work
ENTRYPOINT ["katadeploy"]
CMD ["--help"]
