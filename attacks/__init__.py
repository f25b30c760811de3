"""Robustness evaluations: HopSkipJump L2 / L-infinity through ART (:mod:`attacks.robustness`), the
run store, the worker pool, curve fitting and the comparison of groups."""

import warnings

# ART's import warns on stderr when PyTorch is absent (its certification estimators); this harness
# never uses them. Set here because worker processes import this package before anything else.
warnings.filterwarnings("ignore", message="PyTorch not found")
