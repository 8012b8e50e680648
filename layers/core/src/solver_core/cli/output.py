"""The commands' console (stderr): what every command prints goes through it."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (CI logs, `| tee`) gets a wide fixed width rather than rich's default of 80 columns.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)
