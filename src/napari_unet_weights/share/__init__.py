"""Sharing models: bioimage.io model packages (rdf.yaml, Keras 3 and ONNX weights)."""
