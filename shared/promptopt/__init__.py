"""promptopt: prompt versioning, evaluation and optimization on Google Cloud."""
