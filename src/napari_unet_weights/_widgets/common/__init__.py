"""What the widgets share: the run widget base, controls, workers, tables, layer roles,
lazy layers, snapshots, the labels warning, the model choice (Segment; Train's start-from).
"""
