"""HTTP client of the EAGLE-200 / EAGLE 3 local API: one POST per command, Basic auth, bounded.

Why not ``aioeagle`` (Home Assistant's library, 1.1.1): the wire is one POST of a few lines, and
aioeagle's way of making it does not fit an appliance that owns its clock and must not crash on
odd replies. It paces requests on the wall clock (``time.time()`` and ``asyncio.sleep``, 1 s), which
a test's or the demo's clock cannot drive; it has no timeout of its own; it reads any status but
401 as a reply, so an HTTP 500 page becomes a parse error; and its query parser iterates a
component holding a single ``Variable`` as if it were a list (a crash on that shape, which §2.3
says to accept). The tests still use aioeagle, unchanged, as the independent client that reads the
simulated EAGLE (``integrations/simulator/eagle.py``).

This client paces on the hub's clock (``request_gap_s``, aioeagle's 1 s by default), bounds every
request by ``timeout_s`` (of the hub's clock, through ``real_seconds``) and the reply's size, and
turns every failure into one of three errors by what the caller must do: ``BadAuth`` (the label's
Cloud ID / Install Code are wrong: tell the owner), ``Unreachable`` (refused, reset, HTTP 5xx: retry
with backoff) and ``Stalled`` (no answer in time: retry with backoff; the data goes stale).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp

from integrations.rainforest.eagle_wire import (
    MAX_REPLY_BYTES,
    PATH,
    DeviceEntry,
    QueryReply,
    device_list_command,
    device_query_command,
    parse_device_list,
    parse_device_query,
)


class EagleError(Exception):
    """The EAGLE did not give a usable reply."""


class BadAuth(EagleError):
    """HTTP 401: the Cloud ID or the Install Code (both on the EAGLE's label) is wrong."""


class Unreachable(EagleError, ConnectionError):
    """Connection refused or dropped, or an HTTP error status (rebooting, not an EAGLE there)."""


class Stalled(EagleError, TimeoutError):
    """No complete reply within the timeout (the local API locks up, §2.4)."""


class EagleClient:
    """Talks to one EAGLE at ``host`` (an IP address, ``eagle-<cloudid>.local``, or ``host:port``)."""

    def __init__(self, session: aiohttp.ClientSession, host: str, cloud_id: str, install_code: str, *,
                 clock: Any, timeout_s: float = 15.0, request_gap_s: float = 1.0) -> None:
        self._session = session
        self.host = host
        self._authorization = aiohttp.encode_basic_auth(cloud_id, install_code)
        self._clock = clock
        self.timeout_s = timeout_s
        self.request_gap_s = request_gap_s
        self._next_request: Any = None  # the hub's clock's instant the next request may go
        self._lock = asyncio.Lock()  # one request at a time: the EAGLE serves them one by one

    @property
    def url(self) -> str:
        return f"http://{self.host}{PATH}"

    async def post(self, command: bytes) -> bytes:
        """Send one command; the reply's body. Raises ``BadAuth``, ``Unreachable`` or ``Stalled``."""
        async with self._lock:
            if self._next_request is not None:
                wait = (self._next_request - self._clock()).total_seconds()
                if wait > 0:
                    await self._clock.sleep(wait)
            try:
                return await asyncio.wait_for(self._post(command), self._clock.real_seconds(self.timeout_s))
            except TimeoutError as err:
                raise Stalled(f"no reply from {self.host} within {self.timeout_s:g} s") from err
            finally:
                self._next_request = self._clock() + timedelta(seconds=self.request_gap_s)

    async def _post(self, command: bytes) -> bytes:
        headers = {"Content-Type": "text/xml", "Authorization": self._authorization}
        try:
            async with self._session.post(self.url, data=command, headers=headers, allow_redirects=False) as response:
                if response.status == 401:
                    raise BadAuth(f"{self.host} refused the Cloud ID and Install Code (HTTP 401)")
                if response.status != 200:
                    raise Unreachable(f"{self.host} answered HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(16384):
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise Unreachable(f"{self.host} sent a reply over {MAX_REPLY_BYTES} bytes")
                return bytes(body)
        except aiohttp.ClientResponseError as err:
            raise Unreachable(f"{self.host}: HTTP {err.status}") from err
        except (aiohttp.ClientError, OSError) as err:
            raise Unreachable(f"{self.host}: {type(err).__name__}: {err}") from err

    async def device_list(self) -> list[DeviceEntry]:
        return parse_device_list(await self.post(device_list_command()))

    async def device_query(self, hardware_address: str) -> QueryReply:
        return parse_device_query(await self.post(device_query_command(hardware_address)))
