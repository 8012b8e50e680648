"""Batches: many instances, each a solve; SWE-bench predictions and reports (docs/architecture.md)."""
