"""The agent side: mini-swe-agent configuration, models (litellm and replay), the resumable driver."""
