"""The HTTPS client to one IEEE 2030.5 meter: mutual TLS 1.2, the meter pinned by its LFDI, one
serialized connection, TLS session resumption, bounded retries (aiohttp underneath).

What the meter is like (spec/han-bridges.md §3.2, §3.6, Itron Gen5 Riva as Xcel exposes it):

- TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and P-256 certificates on both sides. Python's
  default cipher list lacks the suite; ``tls_context`` asks for it by its OpenSSL name and falls
  back to ECDHE-ECDSA-AES128-GCM-SHA256 only where the local OpenSSL has no CCM8 (logged once).
- Its certificate chains to a root no public store holds, so there is no CA check: the meter is
  pinned by the LFDI of its certificate, checked inside the handshake (``PinningSSLObject``)
  before a single request goes out. Another meter's certificate fails the handshake with
  ``MeterMismatch`` naming the LFDI it saw, so the link can ask the owner (``hub.meter_pins``).
- It serves one TLS connection at a time and closes idle ones after 30 s: the client keeps at most
  one connection (a connector of limit 1, requests one after another under a lock), lets it go
  after ``idle_s`` (below the meter's 30 s), and resumes the TLS session on the next connection
  (``ResumingContext`` hands the last session to each new handshake): a full ECDHE-ECDSA
  handshake costs the meter ~330 ms (up to 11 s), a resumed one 60-160 ms.
- About one handshake in 190 fails (``BAD_SIGNATURE``) and a kept-alive connection may have been
  dropped just before a request: each request is tried at most ``1 + retries`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from integrations.ieee2030_5.identity import lfdi_of
from integrations.ieee2030_5.resources import MEDIA_TYPE

_LOGGER = logging.getLogger(__name__)

CIPHER = "ECDHE-ECDSA-AES128-CCM8"  # TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, what IEEE 2030.5 mandates
FALLBACK_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
IDLE_S = 20.0  # let a kept-alive connection go before the meter's 30 s idle drop
_fallback_logged = False


class MeterMismatch(ssl.SSLCertVerificationError):
    """The meter's certificate is not the pinned one: ``seen`` is its LFDI, ``pinned`` the expected."""

    def __init__(self, seen: str, pinned: str) -> None:
        super().__init__(f"the meter's certificate has LFDI {seen}, not the pinned {pinned}")
        self.seen = seen
        self.pinned = pinned


class NotRegistered(Exception):
    """The meter refused this appliance (its TLS alert, or HTTP 401/403): its LFDI is not registered."""


class ResourceGone(Exception):
    """HTTP 404 for a path the meter once linked: the links are read again."""


class MeterError(Exception):
    """The meter did not answer usefully after the retries; ``http_status`` when it answered with
    an error status (it is there, but refuses this request), None when it did not answer."""

    def __init__(self, text: str, http_status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(text)
        self.http_status = http_status
        self.unreachable = unreachable  # no TCP connection at all (refused, no route): a cheap probe tells when it is back


class PinningSSLObject(ssl.SSLObject):
    """Checks the peer's LFDI against its context's pin when the handshake completes."""

    def do_handshake(self) -> None:
        super().do_handshake()  # raises SSLWantReadError until the handshake is done
        context = self.context
        if isinstance(context, ResumingContext):
            context.handshake_done(self)


class ResumingContext(ssl.SSLContext):
    """A client context that pins the peer by LFDI and resumes the last TLS session.

    ``pin`` (40 hex digits, or None: take any meter and note its LFDI in ``peer_lfdi``) is read at
    each handshake, so the link may set it between connections.
    """

    sslobject_class = PinningSSLObject
    pin: str | None
    peer_lfdi: str | None
    session_saved: ssl.SSLSession | None
    handshakes: int
    resumed: int
    cipher_name: str | None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname,
                                session=session if session is not None else self.session_saved)

    def handshake_done(self, sslobj: ssl.SSLObject) -> None:
        self.handshakes += 1
        if sslobj.session_reused:
            self.resumed += 1
        cipher = sslobj.cipher()
        self.cipher_name = cipher[0] if cipher else None
        der = sslobj.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLCertVerificationError("the meter presented no certificate")
        seen = lfdi_of(der)
        self.peer_lfdi = seen
        if self.pin is not None and seen != self.pin:
            self.session_saved = None
            raise MeterMismatch(seen, self.pin)
        session = sslobj.session
        if session is not None:
            self.session_saved = session


def tls_context(cert_path: Path, key_path: Path, pin: str | None) -> ResumingContext:
    """The client's TLS context: TLS 1.2 only, the 2030.5 suite, this appliance's certificate, no
    CA check (the pin replaces it). Blocking (reads the key): call it in a thread."""
    global _fallback_logged
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the meter's root is in no store: the LFDI pin is the check
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.set_ciphers(CIPHER)
    except ssl.SSLError:
        context.set_ciphers(FALLBACK_CIPHER)
        if not _fallback_logged:
            _fallback_logged = True
            _LOGGER.warning("This OpenSSL has no %s; offering %s to the meter instead", CIPHER, FALLBACK_CIPHER)
    context.load_cert_chain(cert_path, key_path)
    context.pin = pin
    context.peer_lfdi = None
    context.session_saved = None
    context.handshakes = 0
    context.resumed = 0
    context.cipher_name = None
    return context


class MeterClient:
    """GET and POST to one meter, one request at a time over at most one TLS connection."""

    def __init__(self, base_url: str, context: ResumingContext, *, timeout_s: float = 15.0,
                 idle_s: float = IDLE_S, retries: int = 2, retry_delay_s: float = 0.5) -> None:
        self.base_url = base_url.rstrip("/")
        self.context = context
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._idle_s = idle_s
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    @property
    def peer_lfdi(self) -> str | None:
        return self.context.peer_lfdi

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.context, limit=1, limit_per_host=1,
                                             keepalive_timeout=self._idle_s, enable_cleanup_closed=False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout,
                headers={"Accept": MEDIA_TYPE, "User-Agent": "premise-ems"},
            )
        return self._session

    async def get(self, path: str) -> bytes:
        """The body of ``GET path`` (200); raises ``ResourceGone``, ``NotRegistered``, ``MeterMismatch``
        or ``MeterError``."""
        _status, body, _location = await self._request("GET", path)
        return body

    async def post(self, path: str, body: bytes) -> str | None:
        """POST ``body`` (sep+xml) to ``path``; the Location the meter answered, if any."""
        _status, _body, location = await self._request("POST", path, body)
        return location

    async def _request(self, method: str, path: str, data: bytes | None = None) -> tuple[int, bytes, str | None]:
        if not path.startswith("/"):
            raise ValueError(f"a meter path starts with '/': {path!r}")
        async with self._lock:
            last: BaseException | None = None
            for attempt in range(1 + self._retries):
                if attempt:
                    await asyncio.sleep(self._retry_delay_s * attempt)
                try:
                    return await self._once(method, path, data)
                except aiohttp.ClientConnectorCertificateError as err:
                    cause = err.certificate_error
                    if isinstance(cause, MeterMismatch):
                        await self.drop()
                        raise cause from None
                    last = err
                except (aiohttp.ClientConnectorSSLError, aiohttp.ClientSSLError) as err:
                    if _refused_by_peer(err):
                        await self.drop()
                        raise NotRegistered("the meter refused this appliance's certificate during the TLS "
                                            "handshake") from None
                    last = err
                except aiohttp.ClientConnectorError as err:
                    last = err
                    if isinstance(err.os_error, ConnectionResetError) and attempt == self._retries:
                        # Cut off in the handshake, every time: what a meter does to a client it does not know.
                        await self.drop()
                        raise NotRegistered("the meter closes the connection during the TLS handshake, as it does "
                                            "for an appliance it has not registered") from None
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError, OSError) as err:
                    last = err
                except _Retryable as err:
                    last = err
                await self.drop()  # a connection that failed is not reused
            unreachable = isinstance(last, aiohttp.ClientConnectorError) and not isinstance(
                last.os_error, ConnectionResetError | ssl.SSLError)
            raise MeterError(_describe(last), last.status if isinstance(last, _Retryable) else None,
                             unreachable) from None

    async def _once(self, method: str, path: str, data: bytes | None) -> tuple[int, bytes, str | None]:
        headers = {"Content-Type": MEDIA_TYPE} if data is not None else None
        self.requests += 1
        async with self._http().request(method, self.base_url + path, data=data, headers=headers,
                                        allow_redirects=False) as response:
            body = await response.content.read(1 << 20 | 1)
            status = response.status
            if status in (401, 403):
                raise NotRegistered(f"the meter answered HTTP {status}: this appliance is not registered with it")
            if status == 404:
                raise ResourceGone(path)
            if status >= 500:
                raise _Retryable(f"HTTP {status}", status)
            if status >= 300 or (method == "GET" and status != 200):
                raise MeterError(f"HTTP {status} for {method} {path}", status)
            return status, body, response.headers.get("Location")

    async def drop(self) -> None:
        """Close the connection now (the next request makes a new one, resuming the TLS session)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def close(self) -> None:
        await self.drop()


class _Retryable(Exception):
    def __init__(self, text: str, status: int) -> None:
        super().__init__(text)
        self.status = status


def _refused_by_peer(err: BaseException) -> bool:
    """The server's alert says it does not accept our certificate (unknown CA, bad certificate)."""
    text = str(err).upper()
    return any(word in text for word in ("TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                                         "TLSV13_ALERT_CERTIFICATE_REQUIRED", "ALERT_CERTIFICATE_UNKNOWN",
                                         "TLSV1_ALERT_ACCESS_DENIED"))


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "no answer"
    if isinstance(err, TimeoutError | asyncio.TimeoutError):
        return "the meter did not answer in time"
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot connect to the meter: {err.os_error.strerror or err.os_error}"
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:200]


async def tcp_accepts(url: str, timeout_s: float = 1.0) -> bool:
    """Whether the meter's port accepts a TCP connection now (closed again at once, nothing sent)."""
    parsed = urllib.parse.urlsplit(url)
    try:
        host, port = parsed.hostname, parsed.port or 443
    except ValueError:
        return False
    if not host:
        return False
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ConnectionError):
        await writer.wait_closed()
    return True


def meter_url(section: dict[str, Any]) -> str:
    """The meter's base URL from the section: ``url``, or ``host`` and ``port``."""
    url = section.get("url")
    if url:
        return str(url).rstrip("/")
    return f"https://{section['host']}:{int(section.get('port') or 8081)}"
