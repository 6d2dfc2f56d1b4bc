"""Durable storage: SQLAlchemy models, one writer, read repositories and Alembic migrations."""

from ems.store.core import Store
from ems.store.records import IntervalImport, OutboxRecord, PurgeResult, StoredEvent, StoredMessage

__all__ = ["IntervalImport", "OutboxRecord", "PurgeResult", "Store", "StoredEvent", "StoredMessage"]
