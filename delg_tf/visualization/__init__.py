"""Figures that draw what they are given: attention maps, query/result match figures, training
curves. The demo's report is in `delg_tf.demo`.
"""
