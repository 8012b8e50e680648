"""Orchestrators run a solve's steps: Step Functions in the cloud, a thread pool on one machine."""
