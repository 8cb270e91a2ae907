"""The scheduler: one import for leasing, completing and ending jobs.

The parts live in their own modules:

- :mod:`wowlab_core.leases`: the lease call, heartbeats (leases belong to their token),
  hand-backs, expiry, fair sharing between users;
- :mod:`wowlab_core.completions`: results (idempotent, verified when the submitter does
  not own the node) and errors;
- :mod:`wowlab_core.verification`: exact replication of a sample of results;
- :mod:`wowlab_core.job_states`: planning rows in, and how jobs end;
- :mod:`wowlab_core.tokens`: hashing and comparing secret tokens.
"""

from __future__ import annotations

from wowlab_core.completions import (
    FAILED_NODES_TO_FAIL_JOB,
    CompletionReport,
    complete_chunks,
    fail_chunk,
    merged_result,
)
from wowlab_core.errors import WowlabError
from wowlab_core.job_states import (
    ACTIVE_JOB_STATUSES,
    cancel_job,
    complete_job,
    fail_job,
    insert_chunks,
    touch_config,
)
from wowlab_core.leases import (
    MAX_EXPIRATIONS,
    BeatOutcome,
    beat,
    beat_many,
    lease_chunks,
    release_chunks,
    requeue_expired,
)
from wowlab_core.tokens import hash_token, tokens_match


def error_message(exc: BaseException) -> str:
    """One line for an error reported by or about a node."""
    if isinstance(exc, WowlabError):
        return exc.message
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


__all__ = [
    "ACTIVE_JOB_STATUSES",
    "FAILED_NODES_TO_FAIL_JOB",
    "MAX_EXPIRATIONS",
    "BeatOutcome",
    "CompletionReport",
    "beat",
    "beat_many",
    "cancel_job",
    "complete_chunks",
    "complete_job",
    "error_message",
    "fail_chunk",
    "fail_job",
    "hash_token",
    "insert_chunks",
    "lease_chunks",
    "merged_result",
    "release_chunks",
    "requeue_expired",
    "tokens_match",
    "touch_config",
]
