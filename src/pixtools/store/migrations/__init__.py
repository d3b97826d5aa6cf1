"""Alembic migrations of the PixTools schema (PostgreSQL and SQLite)."""
