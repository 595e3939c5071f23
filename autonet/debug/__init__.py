"""Debugging tools built on the core: anomaly mode and gradient checks."""
