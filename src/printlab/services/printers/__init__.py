"""The lab's printers as connected machines: their records (fleet.py), their sealed API keys, and one
connector per kind of printer software behind one small interface (connector.py, connections.py).

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors` and `services.lab`; the
job workflow and the worker call into them, never the other way round.
"""
