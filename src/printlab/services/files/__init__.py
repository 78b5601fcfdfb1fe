"""The lab's files: the storage tree, upload checks, model analysis and thumbnails, slicer output.

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `services.tasks`, `lab` and
`jobs.records` (the analysis task keeps its result with the job); never `web`.
"""
