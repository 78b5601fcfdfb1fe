"""The staff dashboard: status tabs, job cards, search and filters, kept current without reloading."""
