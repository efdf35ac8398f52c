"""katadeploy.engine"""
