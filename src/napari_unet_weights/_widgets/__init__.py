"""Dock widgets of napari-unet-weights (one module per widget), loaded by napari.yaml."""
