"""The customer's program preferences (C6 3.1 step 4): which of the utility program's information
they want shown and delivered, and in which language.

One record per site, kept in the store (``program_preferences``) and read at every start into
``hub.preferences``; the Settings page changes it (the owner), and the dashboard and the In-Home
Display leave out what is switched off, the EMS makes no notice about it (``wants_notice``: an
event's notices are DR information, a tier warning the current tier's), and what the appliance
delivers elsewhere (the MQTT sensors) leaves it out too. Everything is on until the customer says
otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems import local_text
from ems.store import Store, tables
from ems.store.writer import insert

_LOGGER = logging.getLogger(__name__)

SITE_KEY = "site"  # the appliance serves one site; the key leaves room for more
LANGUAGES = ("en", "es", "zh")

# The information a utility program delivers, in the order the Settings page lists it.
INFORMATION = ("current_price", "usage_and_demand", "scheduled_prices", "dr_events", "current_tier")

# What each notice the EMS makes is about (``ems.local_text``'s templates): a notice about
# information the customer switched off is neither made nor delivered. The notices of the
# customer's own rules (no template) are theirs, and always made.
NOTICE_ABOUT = {
    local_text.TIER_WARNING: "current_tier",
    local_text.BILL_WARNING: "usage_and_demand",
    local_text.EVENT_ANNOUNCED: "dr_events",
    local_text.EVENT_STARTED: "dr_events",
    local_text.EVENT_ENDED: "dr_events",
    local_text.EVENT_ENDED_WITHOUT_YOU: "dr_events",
    local_text.EVENT_CANCELLED: "dr_events",
    local_text.EVENT_OPTED_OUT: "dr_events",
}


@dataclass(frozen=True, slots=True)
class ProgramPreferences:
    current_price: bool = True
    usage_and_demand: bool = True  # the meter's demand now, its registers and the usage chart
    scheduled_prices: bool = True  # the prices and periods to come
    dr_events: bool = True  # demand-response events and their parameters
    current_tier: bool = True
    language: str | None = None  # the program's information in this language; None: the site's

    @property
    def hidden(self) -> tuple[str, ...]:
        """The information switched off, by name (``INFORMATION``)."""
        return tuple(name for name in INFORMATION if not getattr(self, name))

    def wants(self, information: str) -> bool:
        """Whether the customer wants this information (an ``INFORMATION`` name) shown and delivered."""
        if information not in INFORMATION:
            raise ValueError(f"no such information: {information!r}")
        return bool(getattr(self, information))

    def wants_notice(self, template: str) -> bool:
        """Whether a notice made from ``template`` is about information the customer wants."""
        about = NOTICE_ABOUT.get(template)
        return about is None or self.wants(about)

    def with_changes(self, **changes: object) -> ProgramPreferences:
        language = changes.get("language", self.language)
        if language is not None and language not in LANGUAGES:
            raise ValueError(f"a language is one of {', '.join(LANGUAGES)}, not {language!r}")
        unknown = set(changes) - set(INFORMATION) - {"language"}
        if unknown:
            raise ValueError(f"no such preference: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


async def _read(conn: AsyncConnection, site: str) -> ProgramPreferences | None:
    table = tables.program_preferences
    row = (await conn.execute(select(table).where(table.c.site == site))).first()
    if row is None:
        return None
    return ProgramPreferences(**{name: bool(getattr(row, name)) for name in INFORMATION}, language=row.language)


async def load(store: Store, site: str = SITE_KEY) -> ProgramPreferences:
    """The stored preferences, or everything on when the customer has chosen nothing yet."""
    return await store.read("read the program preferences", _read, site) or ProgramPreferences()


async def save(store: Store, preferences: ProgramPreferences, now: datetime, by: str,
               site: str = SITE_KEY) -> ProgramPreferences:
    values = {**{name: getattr(preferences, name) for name in INFORMATION}, "language": preferences.language,
              "changed_at": now, "changed_by": by}

    async def upsert(conn: AsyncConnection) -> None:
        stmt = insert(conn, tables.program_preferences).values(site=site, **values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=["site"], set_=values))

    await store.write("save the program preferences", upsert)
    _LOGGER.info("Program preferences changed by %s: hidden %s, language %s", by,
                 ", ".join(preferences.hidden) or "nothing", preferences.language or "the site's")
    return preferences
