"""katadeploy.configs: KataGo ``.cfg`` templates shipped as package data (``templates/``)."""
