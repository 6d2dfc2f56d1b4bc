"""Finding EAGLEs on the home network over mDNS: ``_http._tcp`` instances named ``eagle-<Cloud ID>``.

The EAGLE-200 announces its web server as DNS-SD instance ``eagle-<cloudid>`` of ``_http._tcp``
(the name Home Assistant's zeroconf discovery matched, spec/han-bridges.md §2.1); its Cloud ID is
the last six hex digits of its Ethernet address. ``zeroconf`` (the library Home Assistant's
discovery runs on, through ``integrations.mdns``, shared with the 2030.5 meters' discovery) browses
for a few seconds and resolves each EAGLE instance to an address. Protocol only: no ``ems`` import.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)

SERVICE = "_http._tcp.local."
_EAGLE = re.compile(r"^eagle-([0-9a-f]{6})\._http\._tcp\.local\.$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundEagle:
    cloud_id: str
    host: str  # an IP address (IPv4 first)
    port: int


def cloud_id_of(instance: str) -> str | None:
    """The Cloud ID an ``_http._tcp`` instance name carries, or None when it is not an EAGLE's."""
    match = _EAGLE.match(instance)
    return match.group(1).lower() if match else None


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def browse(timeout_s: float, *, interfaces: Any = None) -> list[FoundEagle]:
    """The EAGLEs that answer within ``timeout_s`` (empty where mDNS is not available)."""
    from integrations import mdns

    try:
        resolved = await mdns.browse(SERVICE, timeout_s, accept=lambda name: cloud_id_of(name) is not None,
                                     interfaces=interfaces)
    except mdns.MdnsUnavailable as err:
        _LOGGER.info("mDNS is not available here (%s): EAGLEs are found from the neighbour table only", err)
        return []
    found: list[FoundEagle] = []
    for r in resolved:
        addresses = sorted((a for a in r.addresses if _ip(a)), key=lambda a: ":" in a)
        cloud_id = cloud_id_of(r.name)
        if addresses and cloud_id and r.port:
            found.append(FoundEagle(cloud_id, addresses[0], int(r.port)))
    return found
