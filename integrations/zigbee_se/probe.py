"""A cheap "would a connection attempt find the radio now?" for the reconnect supervisor.

After a long outage the supervisor's backoff has grown to its cap (15 minutes for the meter), but
the appliance must be back within seconds of the meter answering again (C6: 10 s meter to
display). The full attempt (start the radio, find the meter, read its formatting) is too costly
to run every two seconds; this probe is not: it only checks that the radio's transport is there.

- the virtual radio (``virtual://HOST:PORT``) and a network-attached radio (``socket://`` or
  ``tcp://HOST:PORT``): a TCP connection is accepted (then closed at once, nothing sent);
- a serial radio (a device path such as ``/dev/ttyUSB0``): the device node exists (the USB
  stick is plugged in again);
- anything else: no probe (the backoff is waited out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

PROBE_TIMEOUT_S = 1.0  # a probe is a hint, never a wait

Probe = Callable[[], Awaitable[bool]]

_TCP_SCHEMES = ("virtual", "socket", "tcp")


def radio_probe(radio: dict[str, Any]) -> Probe | None:
    """The probe for a ``radio`` section (``type`` and ``path``), or None when there is no cheap one."""
    path = str(radio.get("path") or "")
    parsed = urllib.parse.urlsplit(path)
    if parsed.scheme in _TCP_SCHEMES:
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError:
            return None
        if not host or port is None:
            return None
        return lambda: tcp_accepts(host, port)
    if path.startswith("/"):
        return lambda: _exists(path)
    return None


async def tcp_accepts(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when ``host:port`` accepts a TCP connection within ``timeout_s`` (closed again at once)."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ConnectionError):
        await writer.wait_closed()
    return True


async def _exists(path: str) -> bool:
    return await asyncio.to_thread(os.path.exists, path)  # a stat, but never on the loop
