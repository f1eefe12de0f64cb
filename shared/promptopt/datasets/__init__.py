"""Datasets: uploads, bucket drops and ingest into versioned splits; records, rows and samples.

Modules: uploads, ingest, records, catalog, rows, models (the API's schemas); files/ parses the files.
"""
