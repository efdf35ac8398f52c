"""katadeploy.runtime: evaluators that turn encoded positions into raw net outputs, one module per runtime."""
