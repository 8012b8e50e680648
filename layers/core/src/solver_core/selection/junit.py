"""JUnit XML reports, read per test (pytest's `--junitxml`, jest-junit, gotestsum's `--junitfile`).

The code under test writes the report, so it is parsed with defusedxml (no entity expansion, no
external entities) and read with a size limit by the caller. Shared by the champion's baseline
comparison (docs/architecture.md, "Choosing the champion") and `solver batch --evaluate`.
"""

from __future__ import annotations

from enum import StrEnum

from defusedxml import ElementTree

MAX_REPORT_BYTES = 20_000_000
ParseError = ElementTree.ParseError


class CaseOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # a failure or an error
    SKIPPED = "skipped"


def junit_outcomes(xml: bytes) -> dict[tuple[str, str], CaseOutcome]:
    """(classname, name) → outcome, for every testcase of a JUnit XML report. A test reported more
    than once (a rerun, a duplicated id) counts as failed if any report of it failed."""
    outcomes: dict[tuple[str, str], CaseOutcome] = {}
    root = ElementTree.fromstring(xml)
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcome = CaseOutcome.FAILED
        elif "skipped" in tags:
            outcome = CaseOutcome.SKIPPED
        else:
            outcome = CaseOutcome.PASSED
        key = (case.get("classname", ""), case.get("name", ""))
        if outcomes.get(key) is not CaseOutcome.FAILED:
            outcomes[key] = outcome
    return outcomes


def junit_results(xml: bytes) -> dict[tuple[str, str], bool]:
    """(classname, name) → passed (a skipped test did not pass)."""
    return {key: outcome is CaseOutcome.PASSED for key, outcome in junit_outcomes(xml).items()}


def case_outcomes(xml: bytes) -> dict[str, CaseOutcome]:
    """Test id (`classname::name`, or the name alone) → outcome."""
    return {(f"{cls}::{name}" if cls else name): outcome for (cls, name), outcome in junit_outcomes(xml).items()}


def junit_key(test_id: str) -> tuple[str, str]:
    """pytest's JUnit names of a node id: `tests/test_x.py::TestC::test_y[1]` →
    (`tests.test_x.TestC`, `test_y[1]`)."""
    path, *rest = test_id.split("::")
    module = path.removesuffix(".py").replace("/", ".")
    if not rest:
        return module, ""
    return ".".join([module, *rest[:-1]]), rest[-1]
