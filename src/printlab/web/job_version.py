"""The job's version on the forms that change a job: written into the page, read back from the post.

Every such form sends back the status and version (`updated_at`) the page showed, and the service
refuses it as stale if the job has changed since. A post without a version, or with one that can't be
read, is refused here, before anything is changed: skipping the check would let an out-of-date page act.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import abort

from printlab.models import Job
from printlab.services.jobs.status_change import NO_VERSION, Expected

MISSING = (
    "This form doesn't say which version of the job it was filled in on, so nothing was changed. "
    "Reload the job's page and try again."
)
UNREADABLE = (
    "The version of the job this form was filled in on can't be read, so nothing was changed. "
    "Reload the job's page and try again."
)


def version_of(job: Job) -> str:
    """What a page writes into its `expected_version` field."""
    return (job.updated_at or NO_VERSION).isoformat()


def expected_from(form: Mapping[str, Any]) -> Expected:
    """The page's view of the job, from its `expected_status` and `expected_version` fields (400 if unusable)."""
    text = (form.get("expected_version") or "").strip()
    if not text:
        abort(400, description=MISSING)
    try:
        version = datetime.fromisoformat(text)
    except ValueError:
        abort(400, description=UNREADABLE)
    if version.tzinfo is not None:  # versions are stored as naive UTC; an aware one never came from a page
        abort(400, description=UNREADABLE)
    return Expected(status=(form.get("expected_status") or "").strip() or None, updated_at=version)
