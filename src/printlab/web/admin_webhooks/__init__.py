"""Admin › Webhooks: the endpoints other campus systems are told of events at, and each one's delivery log."""
