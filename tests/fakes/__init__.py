"""Local fake servers that stand in for external model APIs in tests."""
