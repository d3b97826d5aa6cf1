"""Messaging: the broker, the outbox relay, and the names of queues, actors and dead letters."""
