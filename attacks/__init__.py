"""Robustness evaluations (HopSkipJump L2 / L-infinity); filled by the robustness issue.

Until then the FactSheet's Robustness section says "not evaluated in this run".
"""
