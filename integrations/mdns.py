"""Browsing DNS-SD services over mDNS with ``zeroconf``: what the LAN meter sources share.

Not an integration: a protocol-only helper (no ``ems`` import) that the EAGLE's and the 2030.5
meters' discovery both use, as the Zigbee integrations share ``integrations.zigbee``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Resolved:
    """One service instance that answered: its full name, addresses as given, port and TXT."""

    name: str
    addresses: list[str]
    port: int | None
    properties: Mapping[Any, bytes | str | None]


class MdnsUnavailable(Exception):
    """mDNS cannot be used here (no zeroconf, or no multicast socket)."""


async def browse(service: str, timeout_s: float, *, accept: Callable[[str], bool] = lambda _name: True,
                 interfaces: Any = None) -> list[Resolved]:
    """The instances of ``service`` whose name ``accept`` takes, found within ``timeout_s`` and resolved."""
    try:
        from zeroconf import ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf
    except ImportError as err:  # pragma: no cover - a dependency of the project
        raise MdnsUnavailable("zeroconf is not installed") from err
    names: set[str] = set()

    def changed(zeroconf: object, service_type: str, name: str, state_change: object) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated) and accept(name):
            names.add(name)

    try:
        azc = AsyncZeroconf(interfaces=interfaces) if interfaces is not None else AsyncZeroconf()
    except OSError as err:
        raise MdnsUnavailable(str(err)) from err
    found: list[Resolved] = []
    try:
        browser = AsyncServiceBrowser(azc.zeroconf, service, handlers=[changed])
        await asyncio.sleep(max(0.1, timeout_s * 0.7))
        for name in sorted(names):
            info = AsyncServiceInfo(service, name)
            if await info.async_request(azc.zeroconf, max(100.0, timeout_s * 300)):
                found.append(Resolved(name, list(info.parsed_addresses()), info.port, info.properties))
        await browser.async_cancel()
    finally:
        with contextlib.suppress(Exception):
            await azc.async_close()
    return found
