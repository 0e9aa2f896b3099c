"""The one place that says what "now" is. Every datetime in FinStack is timezone-aware UTC."""

from datetime import UTC, datetime


def utcnow():
    return datetime.now(UTC)


def as_utc(value):
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if value is None or value.tzinfo is UTC:  # UTC already (as every value PostgreSQL returns to FinStack)
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
