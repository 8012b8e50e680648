"""Fixtures of the fault-injection suite (every test in it carries the `faults` marker)."""

from __future__ import annotations

from tests.faults.world import canaries

__all__ = ["canaries"]
