"""katadeploy.bench: benchmarks — the analysis engine through our client (``bench engine``); NN throughput later."""
