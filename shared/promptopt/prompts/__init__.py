"""Prompts: immutable versions, labels and lineage (service), templates, request/response models."""
