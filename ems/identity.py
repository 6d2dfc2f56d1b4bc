"""The appliance's identity on the meter's network: its IEEE address, its SE device type and ID, and
its install code (C6 3.1 steps 1-3: what the customer gives the utility to register the EMS).

Made once, at the first start, and written in one transaction, so it never changes across
restarts (a second start, or a start after ``kill -9`` halfway, reads the same row back; two
makers racing insert-or-ignore the same row and both read the winner). The install code comes
from a maker the composition root hands in (``integrations.zigbee.install_code``, which owns the
CRC and the link-key derivation): the core keeps the code and its CRC as the utility registers
them and never derives, stores or shows the link key.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.store import Store, tables
from ems.store.writer import insert

_LOGGER = logging.getLogger(__name__)

DEVICE_TYPE = "Energy Management System"
# SE 1.x has no device ID of its own for an EMS. It joins as an In-Premises Display (0x0502,
# spec/zigbee-se-1x.md §1.1): the SE device whose optional clients (Price, DRLC, Metering,
# Messaging, Time) are the ones this appliance implements, and what it is besides (an IHD).
DEVICE_ID = 0x0502

InstallCodeMaker = Callable[[], bytes]
"""Makes a new install code: the code followed by its 2-byte CRC, as the utility registers it."""


@dataclass(frozen=True, slots=True)
class ApplianceIdentity:
    """Who the appliance is to the meter and the utility. ``install_code`` includes its CRC."""

    ieee: str  # EUI-64, "02:1a:2b:3c:4d:5e:6f:70" (zigpy's spelling)
    device_type: str
    device_id: int
    install_code: bytes
    created_at: datetime

    def __repr__(self) -> str:  # the install code is a credential: never in a log line or a traceback
        return f"ApplianceIdentity(ieee={self.ieee!r}, device_id=0x{self.device_id:04X})"

    @property
    def ieee_printed(self) -> str:
        """The device ID as a utility's form asks for it: 16 hex digits in pairs, upper case."""
        return self.ieee.upper()

    @property
    def ieee_hex(self) -> str:
        return self.ieee.replace(":", "").upper()

    @property
    def device_id_printed(self) -> str:
        return f"0x{self.device_id:04X}"

    @property
    def install_code_hex(self) -> str:
        return self.install_code.hex().upper()

    @property
    def install_code_printed(self) -> str:
        """Code and CRC in groups of 4 hex digits, as on a device's label."""
        text = self.install_code_hex
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

    @property
    def qr_text(self) -> str:
        """What the label's QR code holds: the common Zigbee install-code form ``Z:<EUI-64>$I:<code+CRC>``
        (read by installer apps and by zigpy's ``parse_install_code_qr``)."""
        return f"Z:{self.ieee_hex}$I:{self.install_code_hex}"


def random_ieee(rng: random.Random | None = None) -> str:
    """A random EUI-64 for an appliance whose radio reports none: locally administered (bit 1 of
    the first octet set) and unicast (bit 0 clear), so it never collides with a vendor's block."""
    raw = bytearray(rng.randbytes(8) if rng is not None else secrets.token_bytes(8))
    raw[0] = (raw[0] | 0x02) & 0xFE
    return ":".join(f"{b:02x}" for b in raw)


def _from_row(row: object) -> ApplianceIdentity:
    return ApplianceIdentity(
        ieee=row.ieee,  # type: ignore[attr-defined]
        device_type=row.device_type,  # type: ignore[attr-defined]
        device_id=row.device_id,  # type: ignore[attr-defined]
        install_code=bytes.fromhex(row.install_code),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )


async def read_identity(conn: AsyncConnection) -> ApplianceIdentity | None:
    row = (await conn.execute(select(tables.appliance_identity).where(tables.appliance_identity.c.id == 1))).first()
    return None if row is None else _from_row(row)


async def load_or_create(
    store: Store, now: datetime, make_install_code: InstallCodeMaker, *, ieee: str | None = None,
) -> ApplianceIdentity:
    """The stored identity; at the first start, a new one made and committed durably first.

    ``ieee``: the address the radio reports, when it reports one; otherwise a random locally
    administered one. A stored identity wins over both (it was registered with the utility).
    """
    existing = await store.read("read the appliance's identity", read_identity)
    if existing is not None:
        return existing
    code = make_install_code()
    if len(code) not in (8, 10, 14, 18):
        raise ValueError("an install code has 6, 8, 12 or 16 bytes and its 2-byte CRC")
    values = {"id": 1, "ieee": (ieee or random_ieee()).lower(), "device_type": DEVICE_TYPE,
              "device_id": DEVICE_ID, "install_code": code.hex().upper(), "created_at": now}

    async def create(conn: AsyncConnection) -> ApplianceIdentity:
        table = tables.appliance_identity
        await conn.execute(insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=["id"]))
        made = await read_identity(conn)
        assert made is not None
        return made

    identity = await store.write("create the appliance's identity", create, durable=True)
    _LOGGER.info("Created the appliance's identity: device ID %s, %s (%s)",
                 identity.ieee, identity.device_type, identity.device_id_printed)
    return identity
