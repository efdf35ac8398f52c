"""katadeploy.export"""
