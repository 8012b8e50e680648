"""Artifact stores: a local directory (embedded default) and S3."""
