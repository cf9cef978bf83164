"""SavedModel -> feature store: which images (`image_inputs`), the extractor, the store on disk,
and the attention-threshold calibration. Works from a SavedModel alone; never imports `training`.
"""
