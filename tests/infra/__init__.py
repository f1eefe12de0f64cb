"""Infrastructure tests: terraform/ read offline, checkov."""
