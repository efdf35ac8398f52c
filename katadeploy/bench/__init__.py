"""katadeploy.bench"""
