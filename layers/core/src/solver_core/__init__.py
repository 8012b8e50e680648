"""Solver: issues in, tested patches out."""

import os as _os
import tempfile as _tempfile

__version__ = "0.1.0"

# mini-swe-agent and litellm act on import: a banner, a config directory (and a .env in it that
# could inject keys), and a network fetch of model prices. Give them quiet, local defaults before
# any of our modules imports them; explicit settings in the environment still win.
_os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
_os.environ.setdefault("MSWEA_GLOBAL_CONFIG_DIR", _os.path.join(_tempfile.gettempdir(), "solver-mswea"))
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
