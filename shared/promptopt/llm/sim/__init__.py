"""The offline model simulator (`sim:<name>`): deterministic, labelled as simulated everywhere."""
