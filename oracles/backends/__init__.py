"""The built-in backends: ONNX Runtime, torch eager and Inductor, TVM Relax."""
