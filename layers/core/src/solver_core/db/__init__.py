"""Persistence: schema, engines and migrations."""
