"""Benchmarks: each measures qbench against a baseline in the same run and prints ratios."""
