"""The speed figures of `delg-benchmark`: settings, parts, figures with targets, the report.

Sits at the end of the data flow: it may import any `delg_tf` package and no package imports it.
The measuring primitives (`pipeline_benchmark`, `training_benchmark`, `extraction_benchmark`,
`search_benchmark`, `reranking_benchmark`) and the official re-ranking baseline they compare
against (`reference`) live here too; the modules here turn them into named figures (one
`*_part.py` per part) and run the parts in order (`runner.py`).
"""
