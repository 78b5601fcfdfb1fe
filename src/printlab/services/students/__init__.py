"""Students: "See my requests" — a sign-in link by email (no password) and the browser sessions it opens.

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `jobs` (the token hash)
and `mail.outbox`; never `web`. Status changes still go through `jobs/workflow.py`.
"""
