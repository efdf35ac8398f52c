"""katadeploy.runtime"""
