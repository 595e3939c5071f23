"""The engine: grad mode and observers, Tensor, Function and its graph node, backward.

Nothing in ``autonet.core`` imports from outside ``autonet.core``: ops, the
Tensor methods that call them, and every feature (nn, optim, compile, debug,
viz) are built on top. ``tests/test_layout.py`` enforces it.
"""
