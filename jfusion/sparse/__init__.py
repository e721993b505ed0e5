"""Sparse representations: ADMM convolutional BPDN, Tikhonov two-scale split, dictionary learning, OMP.

``jfusion.sparse.cbpdn`` is the solver's entry point (a function); the solver module with its
``init / step / solve / solve_scan`` pieces is ``jfusion.sparse.cbpdn_solver``.
"""

from jfusion.sparse import cbpdn as cbpdn_solver
from jfusion.sparse.cbpdn import cbpdn, cbpdn_scan, encode, synthesize
from jfusion.sparse.dictionary import dct_dictionary, dictionary_manifest, load_dictionary, shipped_dictionaries
from jfusion.sparse.dictlearn import learn_dictionary
from jfusion.sparse.omp import omp, omp_batch
from jfusion.sparse.tikhonov import tikhonov_split

__all__ = [
    "cbpdn",
    "cbpdn_scan",
    "cbpdn_solver",
    "dct_dictionary",
    "dictionary_manifest",
    "encode",
    "learn_dictionary",
    "load_dictionary",
    "omp",
    "omp_batch",
    "shipped_dictionaries",
    "synthesize",
    "tikhonov_split",
]
