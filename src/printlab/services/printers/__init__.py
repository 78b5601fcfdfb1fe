"""The lab's printers as connected machines: their records (fleet.py), their sealed API keys, and one
connector per kind of printer software behind one small interface (connector.py, connections.py).

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `services.sealing`,
`services.lab` and `services.webhooks.events` (the polls announce a printer's state changes); the job
workflow and the worker call into them, never the other way round.
"""
