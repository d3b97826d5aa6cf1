"""Dramatiq broker, actors and the outbox relay."""
