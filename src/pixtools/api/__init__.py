"""Litestar HTTP API."""
