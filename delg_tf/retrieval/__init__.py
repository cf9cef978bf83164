"""Global search (exact, faiss), local descriptor matching, affine RANSAC and re-ranking.

Modules: `exact_search`, `faiss_search` (imports faiss), `search_index` (shared interface),
`index_loading` (`load_index`, either kind), the training-free refinements of a global ranking
(`query_expansion` alpha-QE, `database_augmentation` alpha-DBA, both on `neighbour_weights`, and
`superglobal` re-ranking), `descriptor_matching`, `ransac` and `reranking`. The official
cKDTree + skimage baseline the benchmark and tests compare against is
`delg_tf.benchmark.reference`.
"""

from delg_tf.retrieval.descriptor_matching import match_descriptors
from delg_tf.retrieval.exact_search import ExactIndex, exact_search, similarity_matrix
from delg_tf.retrieval.index_loading import load_index
from delg_tf.retrieval.ransac import RansacResult, ransac_affine
from delg_tf.retrieval.reranking import (
    VerificationConfig,
    count_inliers,
    make_inlier_counter,
    rerank,
)
from delg_tf.retrieval.search_index import SearchIndex

__all__ = [
    "ExactIndex",
    "RansacResult",
    "SearchIndex",
    "VerificationConfig",
    "count_inliers",
    "exact_search",
    "load_index",
    "make_inlier_counter",
    "match_descriptors",
    "ransac_affine",
    "rerank",
    "similarity_matrix",
]
