"""The admin Integrity page: the check's findings grouped by kind, with a repair per finding and "Repair all"."""
