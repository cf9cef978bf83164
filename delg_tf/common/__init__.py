"""What every stage shares: atomic file writes and the training logdir contract.

First in the package order (common, data, conversion, models, training, export, extraction,
retrieval, evaluation, visualization, then the benchmark and demo wings and the binaries): it
imports no other `delg_tf` package.
"""
