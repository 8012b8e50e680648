"""A loopback fake of e2b (control plane + envd) for the real e2b SDK; see ``FakeE2BService``."""

from .service import FakeE2BService

__all__ = ["FakeE2BService"]
