"""Column types, and foreign keys, that behave the same on SQLite and PostgreSQL."""

import sqlite3

import sqlalchemy as sa

from finstack.core.time import as_utc


class UTCDateTime(sa.TypeDecorator):
    """An aware UTC datetime in and out.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored as naive UTC
    and given its zone back when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        value = as_utc(value)
        if value is not None and dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect, coltype):
        """`as_utc` after the impl's own conversion (SQLite's text parsing), as TypeDecorator would run a
        `process_result_value`, without its wrapper around every value of every row."""
        impl_processor = self.impl_instance.result_processor(dialect, coltype)
        if impl_processor is None:
            return as_utc
        return lambda value: as_utc(impl_processor(value))


@sa.event.listens_for(sa.Engine, "connect")
def _enforce_sqlite_foreign_keys(dbapi_connection, connection_record):
    """SQLite ignores foreign keys (and their ON DELETE rules) unless asked, per connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
