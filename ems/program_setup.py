"""Integrations set up on the Commissioning page: validated, tried, kept in the store, applied.

The owner (or the installer) enters a utility program's VTN or the home's MQTT broker on the
Commissioning page instead of editing ems.yaml. Each such integration offers a ``ProgramSetup``
(registered by the composition root in ``hub.program_setups`` with the way to restart it): the page
validates the section with it (``check``, the section's own schema), tries it (``probe``: an OpenADR
registration, an MQTT connection) and only then saves it here and restarts the integration on it,
as Home Assistant's config flows validate before they create an entry.

A section saved here wins over ems.yaml's from then on (the page shows which one is in force).
Secrets (a password, a private key) are kept to be used, never shown back: the page shows that one
is set, and the log never carries them.

Storage: one row per integration, ``integration_settings`` (migration 0013): the validated section
as JSON, secrets included (the database lives in the 0700 data folder).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.model import Text
from ems.store import Store, tables
from ems.store.writer import insert

_LOGGER = logging.getLogger(__name__)

integration_settings = tables.integration_settings


@dataclass(frozen=True, slots=True)
class SetupProbe:
    """What trying a section found: ``reason`` says, in words a customer can act on, why not."""

    ok: bool
    reason: Text | str | None = None  # a Text (each reader's language) or a plain English msgid
    details: tuple[tuple[str, str], ...] = ()  # what was found (the VEN id, the broker's address)


class ProgramSetup(Protocol):
    """One integration's side of the setup page."""

    name: str  # the ems.yaml section it sets
    secrets: tuple[str, ...]  # its keys that are never shown back nor logged

    def check(self, section: dict[str, Any]) -> dict[str, Any]:
        """The section validated by the integration's schema (``ConfigError`` lists every problem)."""
        ...

    def enabled(self, section: dict[str, Any]) -> bool:
        """Whether the section turns the integration on (off needs no probe)."""
        ...

    async def probe(self, section: dict[str, Any]) -> SetupProbe:
        """Connect with a validated section once, and say how it went (never raises for the peer)."""
        ...


@dataclass(frozen=True, slots=True)
class RegisteredSetup:
    """A setup and how to apply a saved section: the integration restarted on it."""

    setup: ProgramSetup
    restart: Callable[[dict[str, Any]], Awaitable[None]]
    file_section: Callable[[], dict[str, Any]]  # ems.yaml's section (validated), the fallback




async def _read(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(integration_settings.c.section)
                              .where(integration_settings.c.name == name))).first()
    if row is None:
        return None
    try:
        section = json.loads(row.section)
    except ValueError:
        _LOGGER.warning("The stored %s settings are unreadable; ems.yaml's are used", name)
        return None
    return section if isinstance(section, dict) else None


async def load_section(store: Store, name: str) -> dict[str, Any] | None:
    """The section saved from the page, or None (ems.yaml's is in force)."""
    return await store.read(f"read the {name} settings", _read, name)


async def save_section(store: Store, name: str, section: dict[str, Any], now: datetime, by: str) -> None:
    values = {"section": json.dumps(section, sort_keys=True), "changed_at": now, "changed_by": by}

    async def upsert(conn: AsyncConnection) -> None:
        stmt = insert(conn, integration_settings).values(name=name, **values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))

    await store.write(f"save the {name} settings", upsert)
    _LOGGER.info("The %s settings were changed by %s on the Commissioning page", name, by)


async def section_in_force(store: Store, registered: RegisteredSetup) -> tuple[dict[str, Any], bool]:
    """The section the integration runs on, and whether it is the page's (else ems.yaml's)."""
    stored = await load_section(store, registered.setup.name)
    if stored is not None:
        return stored, True
    return registered.file_section(), False
