"""The finance office's downloads: a period's jobs, payments and events as CSV or XLSX (admin workstations)."""
