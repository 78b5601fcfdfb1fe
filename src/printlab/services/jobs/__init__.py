"""A job's life: the status workflow, submissions, staff changes that keep the status, dialog locks.

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `services.tasks` and the
`lab`, `files`, `mail.outbox` and `printers` modules (printing on a connected printer); never `web`. Only the engine in `status_change.py` (and a
new job in `submissions.py`) assigns `job.status`.
"""
