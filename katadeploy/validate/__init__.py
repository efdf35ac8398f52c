"""``katadeploy validate``: hold an exported artifact against the FP32 torch reference with KataGo's
``testgpuerror`` statistics and limits (:mod:`katadeploy.validate.metrics`), on encoded validation positions
(:mod:`katadeploy.validate.positions`), and report the result (:mod:`katadeploy.validate.report`)."""
