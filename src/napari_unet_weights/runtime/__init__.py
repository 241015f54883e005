"""Where and how computations run: the dask engine (:mod:`.engine`), progress and
cancellation (:mod:`.progress`), and the memory budget (:mod:`.memory`).
"""
