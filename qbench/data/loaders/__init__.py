"""Loaders for real datasets, each reading its official release layout."""
