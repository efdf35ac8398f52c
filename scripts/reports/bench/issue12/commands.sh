set -x
lscpu | grep "Model name"
time katadeploy bench engine --model kata1-b18c384nbt --backend /tmp/s18/deploy-out/kata1-b18c384nbt-s6582191360-d3422816034-openvino-fp32.xml --threads 8 --visits 100 --positions 3 --katago /root/.cache/katadeploy/katago-build/eigen-v1.17.2-aa0983e749dd/build/katago --no-progress --json eigen.json --markdown eigen.md --plot eigen.png
time katadeploy bench engine --model kata1-b18c384nbt --backend /tmp/s18/deploy-out/kata1-b18c384nbt-s6582191360-d3422816034-openvino-fp32.xml --threads 8 --visits 100 --positions 3 --no-progress --json opencl.json --markdown opencl.md --plot opencl.png
time katadeploy bench nn /tmp/s18/deploy-out/kata1-b18c384nbt-s6582191360-d3422816034-openvino-fp32.xml --model kata1-b18c384nbt --batch 8 --seconds 20 --json nn.json
