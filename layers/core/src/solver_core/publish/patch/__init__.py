"""The champion patch (`git diff --binary --full-index` output) turned back into file contents.

Parsing and applying are strict: the patch comes from a sandbox that ran untrusted code, so anything
that is not plain git diff output is refused, and every reconstructed file is checked against the
blob id the patch itself names (`index <old>..<new>`): a file is published only if its bytes hash to
exactly what git computed in the sandbox.
"""
