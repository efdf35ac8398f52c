# katadeploy on NVIDIA Jetson (JetPack 6, aarch64): TensorRT from JetPack; build on the device itself.
FROM nvcr.io/nvidia/l4t-jetpack:r36.4.0
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip python3-libnvinfer \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/katadeploy
COPY pyproject.toml README.md ./
COPY katadeploy ./katadeploy
# torch for Jetson comes from NVIDIA's Jetson wheel index (JetPack 6); set TORCH_WHEEL to the wheel URL for your JetPack
ARG TORCH_WHEEL=""
RUN if [ -n "$TORCH_WHEEL" ]; then pip3 install "$TORCH_WHEEL"; fi \
    && pip3 install --no-deps -e . && pip3 install numpy sgfmill matplotlib onnx cuda-python
WORKDIR /work
ENTRYPOINT ["katadeploy"]
CMD ["--help"]
