"""Webhooks (issue 15): HTTPS endpoints an admin registered are told of chosen events, signed as the
Standard Webhooks convention says.

- events.py     writes a delivery per subscribed endpoint in the transaction of the change (job created,
                status changed, payment recorded, printer state changed), with its body fixed then
- endpoints.py  the admin's endpoints: add, edit, pause, remove, a new secret, a test event; the log
- targets.py    where an endpoint's name leads, and the refusal of addresses on the lab's own network
- delivery.py   the worker's sending: claimed with a lease, signed, sent with no transaction open,
                retried on the Standard Webhooks schedule, then failed until an admin retries it

Modules here may import `domain`, `models`, `db`, `clock`, `services.errors`, `services.sealing` and
`services.lab`; the job workflow and the printer polls call `events`, never the other way round.
"""
