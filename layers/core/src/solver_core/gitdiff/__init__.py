"""Reading `git diff --binary --full-index` output strictly: files, paths, modes, blob ids and hunks.
The patch comes from a sandbox that ran untrusted code, so anything that is not plain git diff
output is refused."""
