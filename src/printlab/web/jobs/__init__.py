"""Staff pages for one job: its details, files, notes, timeline and actions."""
