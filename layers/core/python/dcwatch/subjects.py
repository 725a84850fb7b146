"""The alert subject: `[dcwatch] <what happened>`, cut to the 100 characters SNS takes as a Subject.

Top level because detection, recovery and the SNS adapter all use it, and none of them owns the others."""

from __future__ import annotations

PREFIX = "[dcwatch]"
SNS_SUBJECT_MAX = 100  # SNS refuses a longer Subject


def fit_subject(subject: str) -> str:
    """A subject SNS accepts: its first SNS_SUBJECT_MAX characters."""
    return subject[:SNS_SUBJECT_MAX]


def alert_subject(words: str) -> str:
    """`[dcwatch] <words>`, cut to fit: the subject alone tells the reader what happened and whether to act."""
    return fit_subject(f"{PREFIX} {words}")
