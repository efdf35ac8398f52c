"""katadeploy.data: bundled real-game data (``positions/oracle80.jsonl``: 60 positions from AI games, 20 random)."""
