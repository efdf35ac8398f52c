# katadeploy on Raspberry Pi 4/5 (64-bit OS, aarch64): LiteRT (XNNPACK) and ONNX Runtime on the CPU.
FROM --platform=linux/arm64 python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/katadeploy
COPY pyproject.toml README.md ./
COPY katadeploy ./katadeploy
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install ".[onnx]" ai-edge-litert
WORKDIR /work
ENTRYPOINT ["katadeploy"]
CMD ["--help"]
