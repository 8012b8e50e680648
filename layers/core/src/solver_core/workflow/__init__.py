"""The solve workflow: the steps of a run, the solve-level steps around them, the retry rules, the
sweeper and the run loop the orchestrators drive."""
