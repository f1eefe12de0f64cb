"""Money: the monthly spend ledger every paid model call adds to, and the tenant's spending cap.

Low in the house (it imports only store, errors and http models) because batch, inference and
experiments all record spend and check the cap; `promptopt.usage` reports above them.
"""
