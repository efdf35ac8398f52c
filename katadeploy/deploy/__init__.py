"""The whole mission in one command: calibrate, export, validate and benchmark a net (``katadeploy deploy``)."""
