"""Adapters to the outside world's state: database, object store, cache."""
