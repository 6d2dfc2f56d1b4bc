"""Durable storage: SQLAlchemy models, one writer, read repositories and Alembic migrations."""

from ems.store.core import Store
from ems.store.records import OutboxRecord, PurgeResult, StoredEvent, StoredMessage

__all__ = ["OutboxRecord", "PurgeResult", "Store", "StoredEvent", "StoredMessage"]
