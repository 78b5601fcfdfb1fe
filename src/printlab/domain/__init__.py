"""Pure rules of the lab: statuses, pricing, naming and the catalog. No Flask, no database, no I/O."""
