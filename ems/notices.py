"""Messages the EMS makes itself about demand response: a rule's notice, an event starting or ending.

They are local ``UtilityMessage``s, shown and stored like the utility's own. Their ids come from a
range of their own (above the bill warnings'), derived from what they are about, so the same
notice raised again replaces itself instead of piling up.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from ems.model import MessageImportance, MessageOrigin, UtilityMessage

NOTICE_ID_BASE = 0xFE000000
NOTICE_LIFETIME = timedelta(hours=12)


def notice_id(*parts: object) -> int:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return NOTICE_ID_BASE + int.from_bytes(digest[:3], "big")


def _meter_id(hub: Any, meter_id: str | None) -> str:
    if meter_id:
        return meter_id
    meters = list(hub.state.meters)
    return meters[0] if meters else "main"


async def publish_notice(
    hub: Any,
    text: str,
    at: datetime,
    *,
    meter_id: str | None = None,
    template: str = "",
    params: dict[str, str] | None = None,
    importance: MessageImportance = MessageImportance.MEDIUM,
    key: tuple[object, ...] | None = None,
) -> UtilityMessage:
    """Show ``text`` as a local message (kept in the store like any message)."""
    message = UtilityMessage(
        meter_id=_meter_id(hub, meter_id),
        message_id=notice_id(*(key or (text,))),
        text=text,
        importance=importance,
        start=at,
        end=at + NOTICE_LIFETIME,
        confirmation_required=False,
        received_at=at,
        origin=MessageOrigin.LOCAL,
        template=template,
        params=tuple(sorted((params or {}).items())),
    )
    hub.bus.publish(message)
    return message
