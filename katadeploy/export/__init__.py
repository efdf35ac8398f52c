"""Export a KataGo net to deployment formats (ONNX, TFLite, Core ML, TensorRT, OpenVINO).

One module per target format; each provides ``export(request) -> Path`` (see :mod:`katadeploy.export.request`)
and writes a sidecar manifest (:mod:`katadeploy.artifact`) next to the artifact.
"""
