"""Column types and the clock: every datetime the store writes or reads is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


class DateTimeUTC(sa.TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` whose values are aware UTC both ways: SQLite keeps no
    zone and hands back naive datetimes, which are UTC (the only zone written)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """The values' Python type, for SQLAlchemy's introspection."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002  UTC on every dialect
        """Written as UTC; a naive value is taken to be UTC already."""
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002  UTC on every dialect
        """Read as aware UTC (SQLite's naive values are UTC)."""
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)
