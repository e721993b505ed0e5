"""Sparse representations: ADMM convolutional BPDN, Tikhonov two-scale split, dictionary learning, OMP."""

from jfusion.sparse import cbpdn as cbpdn_solver
from jfusion.sparse.cbpdn import cbpdn, cbpdn_scan

__all__ = ["cbpdn", "cbpdn_scan", "cbpdn_solver"]
