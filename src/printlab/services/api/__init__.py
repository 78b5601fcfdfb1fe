"""The API's own state: personal API tokens (tokens.py), made by admins for a staff member.

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors` and `lab` (actors, the
admin log, staff); never `web`. What a token does to jobs still goes through `jobs/workflow.py`.
"""
