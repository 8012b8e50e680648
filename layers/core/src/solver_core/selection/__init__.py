"""Choosing the champion among candidate patches: signals beyond one exit code."""
