# katadeploy for NVIDIA GPUs: TensorRT engines (strongly typed FP16 / INT8-QDQ) and ONNX Runtime's CUDA provider.
# TensorRT engines are specific to the GPU and TensorRT version they were built with: build them where they run.
FROM nvcr.io/nvidia/tensorrt:25.10-py3
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/katadeploy
COPY pyproject.toml README.md ./
COPY katadeploy ./katadeploy
# the image ships TensorRT and its Python bindings; add torch (CUDA build), cuda-python and ONNX Runtime GPU
RUN pip install torch==2.13.0 cuda-python onnxruntime-gpu \
    && pip install ".[onnx]"
WORKDIR /work
ENTRYPOINT ["katadeploy"]
CMD ["--help"]
