"""A job's life: the status workflow, submissions, staff changes that keep the status, dialog locks.

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `services.tasks` and the
`lab`, `files` and `mail.outbox` modules; never `web`. Only the engine in `status_change.py` (and a
new job in `submissions.py`) assigns `job.status`.
"""
