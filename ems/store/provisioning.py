"""The provisioning log and the provisioned devices in the store (``ems.provisioning`` calls these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.store import tables

if TYPE_CHECKING:
    from ems.provisioning import DeviceChoice, ProvisioningEntry


async def add_entries(conn: AsyncConnection, entries: Sequence[ProvisioningEntry]) -> None:
    if entries:
        await conn.execute(insert(tables.provisioning_log), [
            {"at": e.at, "device_id": e.device_id, "stage": e.stage, "message": e.message[:64],
             "result": e.result, "detail": e.detail} for e in entries])


async def entries(conn: AsyncConnection, device_id: str | None, stage: str | None, result: str | None,
                  limit: int) -> list[ProvisioningEntry]:
    from ems.provisioning import ProvisioningEntry

    t = tables.provisioning_log
    query = select(t.c.at, t.c.device_id, t.c.stage, t.c.message, t.c.result, t.c.detail)
    for column, value in ((t.c.device_id, device_id), (t.c.stage, stage), (t.c.result, result)):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(t.c.id.desc()).limit(limit)
    rows = (await conn.execute(query)).all()
    return [ProvisioningEntry(*row) for row in reversed(rows)]


async def choices(conn: AsyncConnection) -> list[DeviceChoice]:
    from ems.provisioning import DeviceChoice

    t = tables.provisioned_devices
    rows = (await conn.execute(select(t))).mappings().all()
    return [DeviceChoice(
        device_id=row["device_id"], name=row["name"], location=row["location"],
        programs=tuple(p for p in (row["program"] or "").split(",") if p),
        enrollment_group=row["enrollment_group"], device_class=row["device_class"],
        acknowledged_at=row["acknowledged_at"], readiness=row["readiness"], changed_at=row["changed_at"],
    ) for row in rows]


async def put_choice(conn: AsyncConnection, choice: DeviceChoice) -> None:
    t = tables.provisioned_devices
    values: dict[str, Any] = {
        "device_id": choice.device_id, "name": choice.name, "location": choice.location,
        "program": ",".join(choice.programs) or None, "enrollment_group": choice.enrollment_group,
        "device_class": choice.device_class, "acknowledged_at": choice.acknowledged_at,
        "readiness": choice.readiness, "changed_at": choice.changed_at,
    }
    await conn.execute(delete(t).where(t.c.device_id == choice.device_id))
    await conn.execute(insert(t).values(**values))
