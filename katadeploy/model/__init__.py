"""katadeploy.model: KataGo nets in Python.

``desc`` (records) <- ``format`` (reader) / ``writer``; ``net`` (torch module); ``postprocess`` (kata-raw-nn
quantities); ``stats`` (params, FLOPs); ``hub`` (known nets, downloads); ``synthetic`` (random test nets).
"""
