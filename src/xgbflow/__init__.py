"""An XGBoost classifier from tabular data to an ONNX model served by KServe."""

__version__ = "0.1.0"
