"""Experiments: optimization runs of a prompt against a dataset and a metric."""
