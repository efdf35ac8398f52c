"""katadeploy.validate"""
