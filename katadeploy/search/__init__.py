"""katadeploy.search: a port of KataGo's MCTS over katadeploy's evaluators, and its analysis engine.

Modules: :mod:`~katadeploy.search.params` (SearchParams and .cfg keys), :mod:`~katadeploy.search.config`
(.cfg parsing), :mod:`~katadeploy.search.scorevalue` and :mod:`~katadeploy.search.utility` (utilities),
:mod:`~katadeploy.search.nnoutput`, :mod:`~katadeploy.search.nneval` and :mod:`~katadeploy.search.batcher`
(neural-net front end: features, symmetry, cache, batching), :mod:`~katadeploy.search.node`,
:mod:`~katadeploy.search.legality` (policy legal mask), :mod:`~katadeploy.search.explore` (PUCT/FPU),
:mod:`~katadeploy.search.backup` (value weighting), :mod:`~katadeploy.search.rootsymmetry` (root symmetry pruning),
:mod:`~katadeploy.search.search` (playouts), :mod:`~katadeploy.search.results` (LCB move choice, PV, analysis
JSON), :mod:`~katadeploy.search.requests` and :mod:`~katadeploy.search.server` (the protocol),
:mod:`~katadeploy.search.engine` and :mod:`~katadeploy.search.commands` (``katadeploy analysis``),
:mod:`~katadeploy.search.fidelity` (measuring against the real KataGo; results in ``measurements/``).
"""
