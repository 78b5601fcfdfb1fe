"""Unguessable, signed references to a job for the student's status link (no account needed)."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "printlab.job-status"


def make_reference(secret_key: str, job_id: str) -> str:
    return URLSafeSerializer(secret_key, salt=_SALT).dumps(job_id)


def read_reference(secret_key: str, reference: str) -> str | None:
    """The job id inside a reference, or None for anything forged, altered or malformed."""
    if not reference or len(reference) > 200:
        return None
    try:
        job_id = URLSafeSerializer(secret_key, salt=_SALT).loads(reference)
    except BadSignature:
        return None
    return job_id if isinstance(job_id, str) else None
