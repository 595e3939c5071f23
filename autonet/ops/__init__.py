"""Primitive differentiable ops, one Function per op, grouped by kind.

Each op keeps its forward, its derivative and its user-facing function side by
side. Backward formulas use only operations that ndarrays and Tensors share
(operators, ``sum``, ``reshape``, ...) or the helpers in :mod:`.generic`, so each
derivative is written once and serves both plain and higher-order gradients.
"""
