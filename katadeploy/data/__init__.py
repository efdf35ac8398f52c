"""katadeploy.data"""
