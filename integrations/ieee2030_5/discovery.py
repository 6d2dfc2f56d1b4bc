"""Finding IEEE 2030.5 meters on the home network: DNS-SD ``_smartenergy._tcp`` over mDNS.

The Itron Gen5 Riva answers plain mDNS (``_smartenergy._tcp.local.``; not the standard's
site-scoped xmDNS, and not subtype queries) as instance ``itrondnsserver-<SFDI>`` on port 8081 with
TXT ``txtvers=1 dcap=/dcap level=-S0 https=8081`` (spec/han-bridges.md §3.4). ``zeroconf`` (the
library Home Assistant's discovery runs on) browses for the base type only and resolves each
instance; ``meter_of`` turns what it found into an address the settings take. The SFDI in the
instance name names the meter before any TLS; the link confirms it against the certificate.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)

SERVICE = "_smartenergy._tcp.local."
_SFDI = re.compile(r"(\d{10,12})$")


@dataclass(frozen=True, slots=True)
class FoundMeter:
    """A 2030.5 server that answered on the LAN."""

    name: str  # the DNS-SD instance name
    host: str  # an IP address
    port: int  # the HTTPS port (TXT ``https``, else SRV)
    dcap_path: str
    sfdi: int | None  # from the instance name, when it ends in one

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def meter_of(name: str, addresses: Sequence[str], srv_port: int | None,
             txt: Mapping[Any, bytes | str | None]) -> FoundMeter | None:
    """What a resolved ``_smartenergy._tcp`` instance says, or None when it gives no address."""
    values = {_text(k).lower(): _text(v) for k, v in txt.items() if k is not None}
    usable = [a for a in addresses if _is_ip(a)]
    if not usable:
        return None
    usable.sort(key=lambda a: ":" in a)  # IPv4 first
    port = srv_port
    https = values.get("https", "")
    if https.isdigit() and 0 < int(https) < 65536:
        port = int(https)
    if not port:
        return None
    dcap = values.get("dcap") or values.get("path") or "/dcap"
    if not dcap.startswith("/"):
        dcap = "/" + dcap
    instance = name.split("._smartenergy", 1)[0]
    match = _SFDI.search(instance)
    return FoundMeter(instance, usable[0], port, dcap[:200], int(match.group(1)) if match else None)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def browse(timeout_s: float, *, interfaces: Any = None) -> list[FoundMeter]:
    """The 2030.5 meters that answer within ``timeout_s`` (empty without zeroconf or a network)."""
    from integrations import mdns

    try:
        resolved = await mdns.browse(SERVICE, timeout_s, interfaces=interfaces)
    except mdns.MdnsUnavailable as err:
        _LOGGER.warning("mDNS is not available here (%s): 2030.5 meters cannot be found on the LAN", err)
        return []
    found = [meter_of(r.name, r.addresses, r.port, r.properties) for r in resolved]
    return [meter for meter in found if meter is not None]
