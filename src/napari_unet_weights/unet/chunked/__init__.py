"""The chunked path of the U-Net on large (dask / zarr) images: the graph of blocks
(:mod:`.big`), their stitching (:mod:`.stitch`), chunked statistics (:mod:`.lazy_stats`) and
the OME-Zarr labels writer (:mod:`.zarr_labels`).
"""
