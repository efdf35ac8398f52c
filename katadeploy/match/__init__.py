"""katadeploy.match: strength in games - ``katadeploy match A B`` with Elo and its 95% interval, run on Ray.

Modules, one concern each:

* :mod:`~katadeploy.match.players` - what A and B name (a net or artifact searched by ``katadeploy analysis``,
  or ``katago:NET``) and the engine process that plays for each;
* :mod:`~katadeploy.match.openings` - balanced openings (real games' first moves, or seeded random ones);
* :mod:`~katadeploy.match.game` - one refereed game (katadeploy's board and rules, resignation, area scoring);
* :mod:`~katadeploy.match.record` - a game as SGF;
* :mod:`~katadeploy.match.ledger` - ``games.jsonl``, written as games end, and ``--resume``;
* :mod:`~katadeploy.match.cluster` - Ray: worker actors with warm engines, replay of a dead worker's game;
* :mod:`~katadeploy.match.elo` / :mod:`~katadeploy.match.sprt` - the statistics;
* :mod:`~katadeploy.match.report` - ``match.json``, ``match.md``, ``elo.png``;
* :mod:`~katadeploy.match.runner` - :func:`~katadeploy.match.runner.run_match`, the whole match;
* :mod:`~katadeploy.match.commands` - the CLI.

Ray is an optional extra (``pip install 'katadeploy[match]'``); only the cluster module imports it, on use.
"""
