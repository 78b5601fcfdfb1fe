"""The lab's reports: /reports (figures, charts and their tables), /reports.json, and /analytics."""
