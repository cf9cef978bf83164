"""Checkpoint -> SavedModel: the serving tf.Module, its signatures, the multi-scale pyramid.

Reads the training logdir through `common.logdir` and never imports `training`; the SavedModel
and its settings asset (`export_settings`) are the contract with everything after it.
"""
