"""The paper's claims that the method chapters test, each with our result and a verdict.

Every ``claims_<chapter>`` function reads the committed tables under ``results/`` and returns a
list of :class:`Claim`; the verdict page collects them. Nothing here is typed in by hand: a verdict
changes when the numbers do.
"""
from __future__ import annotations

from dataclasses import dataclass

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not testable here")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: where it is (``section``), what it says, what we measured, the verdict
    (one of :data:`VERDICTS`), why, and the book page holding the evidence."""

    section: str
    claim: str
    ours: str
    verdict: str
    why: str
    evidence: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
