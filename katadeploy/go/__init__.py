"""katadeploy.go"""
