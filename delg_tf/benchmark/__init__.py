"""The speed figures of `delg-benchmark`: settings, parts, figures with targets, the report.

Sits at the end of the data flow: it may import any `delg_tf` package and no package imports it.
The measuring primitives live with what they measure (`data/pipeline_benchmark.py`,
`retrieval/reranking_benchmark.py`, `retrieval/search_benchmark.py`,
`training/training_benchmark.py`, `extraction/extraction_benchmark.py`); the modules here turn
them into named figures (one `*_part.py` per part) and run the parts in order (`runner.py`).
"""
