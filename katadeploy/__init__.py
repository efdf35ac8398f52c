"""katadeploy: a deployment kit for KataGo nets.

Subpackages follow the data: ``model`` (weight codec, torch net, post-processing) -> ``go`` (board, rules,
v7 features) -> ``data`` -> ``export`` -> ``runtime`` -> ``validate`` -> ``engine`` (analysis client) ->
``bench`` -> ``configs`` -> ``cli``.
"""

__version__ = "0.1.0"
