"""The web console under /ui: server-rendered pages over the API's services (docs/architecture.md)."""
