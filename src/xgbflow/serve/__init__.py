"""The model server: an exported model directory behind KServe's V1 and V2 REST APIs.

`server` is the `xgbflow serve` command, `model` loads the directory into onnxruntime,
`requests` turns request bodies into the graph's inputs (or a 4xx naming the field),
`endpoints` wires both onto kserve's FastAPI application, and `metrics` exports request,
prediction and drift metrics for Prometheus.
"""
