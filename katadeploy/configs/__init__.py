"""katadeploy.configs"""
