"""Usage, cost and the tenant's monthly spending cap; the models this deployment serves.

A domain above batch and experiments: it reads what jobs and runs recorded, and the ledger that
every place that pays for a model call adds to.
"""
