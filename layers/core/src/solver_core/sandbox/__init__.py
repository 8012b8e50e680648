"""Sandboxes: where agent commands and repository scripts run."""
