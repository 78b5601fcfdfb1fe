"""Read models for the pages: the dashboard, the job page and the student's pages; they change nothing.

Modules here may import every other service package (they read across them), `domain`, `models` and
`clock`; never `web`. Only `web` imports them.
"""
