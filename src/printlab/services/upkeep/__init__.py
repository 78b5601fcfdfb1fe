"""Keeping the service sound: scheduled sweeps, retention and prune, integrity check and repair,
backup and restore, and the health of its parts.

Modules here may import every other service package, `domain`, `models`, `db` and `clock`; never `web`.
"""
