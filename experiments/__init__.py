"""Benchmarks and experiments; ``python -m experiments`` runs the experiments."""
