"""katadeploy.go: Go rules and KataGo's v7 input features.

``board`` (exact port of KataGo's Board: captures, ko, ladders, pass-alive area) -> ``rules`` (KataGo rule sets)
-> ``history`` (BoardHistory: superko, encore, komi bonuses) -> ``features`` (v7 encoder) -> ``position``
(analysis-query-shaped positions). ``symmetry`` and ``metadata`` serve the net's inputs and outputs.
"""
