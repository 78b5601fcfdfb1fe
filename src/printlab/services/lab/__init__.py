"""The lab itself: staff, workstations and who is acting, the catalog, the admin log, demo data.

Modules here may import `domain`, `models`, `db`, `clock` and `services.errors` (and the demo, which
fills a whole lab, any service package); never `web`.
"""
