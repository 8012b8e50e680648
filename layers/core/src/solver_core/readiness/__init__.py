"""Is this machine ready? `doctor.doctor` checks everything and reports; `doctor.preflight` checks
what a solve about to start needs, in well under a second, before anything is created
(`solver solve`, `solver serve` and `solver batch` call it). Kept free of imports, so that the
`solver` executable's fast path (`solver_core.entry`) loads only `models`."""
