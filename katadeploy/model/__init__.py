"""katadeploy.model"""
