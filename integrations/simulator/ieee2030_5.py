"""A simulated IEEE 2030.5 meter on the LAN, as Xcel's Launchpad exposes an Itron Gen5 Riva.

An aiohttp server over TLS 1.2 on loopback with its own self-signed P-256 certificate. It demands
a client certificate and admits only the ones registered with it (the utility's portal:
``register_client``), and serves the 2018-namespace resources a customer EMS reads
(spec/han-bridges.md §3.5-3.6): DeviceCapability, SelfDevice/DeviceInformation (its LFDI), Time,
UsagePoint -> MeterReadings (instantaneous demand in W, signed, negative while exporting as Itron's
is; summations delivered and received in Wh in a ReadingSet; interval data delivered and
received, ReadingSets of 12 h, UTC-aligned, newest first, each ReadingList newest first),
pricing (TariffProfile -> RateComponent -> TimeTariffInterval -> ConsumptionTariffInterval, from
the scenario's rate), messaging (the scenario's messages as TextMessages) and DRLC (its events as
EndDeviceControls), and takes the client's Responses at ``/rsps/1/rsp``.

Its values come from the simulator's household model: the registers are those of
``meter.SimulatedMeter`` (the household's net demand integrated; the same numbers the ZigBee
meter shows), advanced to the moment of each request.

Like the real meter it serves **one TLS connection at a time** (another is closed at once) and
drops a connection idle for ``idle_s`` (30 s). Faults, for the tests and the soak: ``stall()``
(connections accepted, nothing answered), ``reboot(down_s)`` (every connection dropped, the
port closed, back with a new TLS session cache), ``drop()``/``resume()`` (gone for as long as
the caller likes: hours on a simulated clock), ``change_format(field)`` (a firmware that writes a
field another way), ``swap_certificate()`` (a different meter: a move).

It imports nothing of the appliance's adapters: its XML and its LFDI are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ems.clock import Clock, as_clock
from integrations.simulator.meter import Interval, SimulatedMeter
from integrations.simulator.scenario import Scenario

_LOGGER = logging.getLogger(__name__)

NS = "urn:ieee:std:2030.5:ns"
MEDIA = "application/sep+xml"
CIPHER = "ECDHE-ECDSA-AES128-CCM8"
SET_HOURS = 12  # interval ReadingSets of 12 h, UTC-aligned (Itron)
SETS_KEPT = 60
ITRON_PEN = 1233
SUBJECT = "/rsps/1/rsp"
IMPORTANCE_PRIORITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def lfdi(certificate_der: bytes) -> str:
    """The LFDI of a certificate (first 160 bits of its SHA-256), as the meter computes it."""
    return hashlib.sha256(certificate_der).hexdigest()[:40].upper()


def make_certificate(common_name: str, now: datetime) -> tuple[bytes, bytes, str]:
    """A P-256 key and self-signed certificate (PEM both) and the certificate's LFDI."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM), lfdi(
        certificate.public_bytes(serialization.Encoding.DER))


@dataclass
class ReceivedResponse:
    """A Response the client POSTed (DrResponse, TextResponse, ...), as the meter recorded it."""

    at: datetime
    kind: str
    body: str


@dataclass
class _Connections:
    active: int = 0
    refused: int = 0
    accepted: int = 0
    cut: int = 0  # the next connections to fail at once
    transports: set[Any] = field(default_factory=set)


class _OneAtATime(asyncio.Protocol):
    """Wraps aiohttp's request handler: a second TLS connection while one is open is closed at once."""

    def __init__(self, inner: asyncio.Protocol | None, connections: _Connections) -> None:
        self._inner = inner
        self._connections = connections
        self._transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        if self._connections.cut > 0:  # a handshake that fails (Itron: about 1 in 190, BAD_SIGNATURE)
            self._connections.cut -= 1
            self._connections.refused += 1
            self._inner = None
            transport.abort()
            return
        if self._inner is None or self._connections.active >= 1:
            self._connections.refused += 1
            self._inner = None
            transport.close()
            return
        self._connections.active += 1
        self._connections.accepted += 1
        self._connections.transports.add(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._connections.active -= 1
            self._connections.transports.discard(self._transport)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class Ieee2030Meter:
    """The simulated meter (see the module docstring). ``start`` binds ``port`` (0: a free one)."""

    def __init__(self, scenario: Scenario, clock: Clock | Callable[[], datetime] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, idle_s: float = 30.0, intervals: bool = True,
                 pricing: bool = True, messaging: bool = True, drlc: bool = True, poll_rate_s: int = 5,
                 shared: Callable[[], SimulatedMeter | None] | None = None, keep_in: Path | None = None) -> None:
        self.clock: Clock = as_clock(clock)
        self.scenario = scenario
        self._own = SimulatedMeter(scenario, self.clock)
        self._shared = shared  # the simulated HAN's meter (ems demo): the same registers, home devices included
        self.host = host
        self.port = port
        self.idle_s = idle_s
        self.serves_intervals = intervals
        self.serves_pricing = pricing
        self.serves_messaging = messaging
        self.serves_drlc = drlc
        self.poll_rate_s = poll_rate_s
        self.key_pem, self.cert_pem, self.lfdi = _kept_certificate(keep_in, self.clock())
        self.registered: dict[str, bytes] = {}  # client LFDI -> its certificate (PEM)
        self.responses: list[ReceivedResponse] = []
        self.requests: list[str] = []
        self.started_at: datetime | None = None
        self.broken: set[str] = set()  # path prefixes answered 404 though linked (a firmware's gap)
        self.demand_sequence: int | None = None  # set: each demand read serves the next integer (W)
        self.formats: set[str] = set()  # fields written another way: "demand" (a decimal), "summation" (hex)
        self.connections = _Connections()
        self._stalled = asyncio.Event()
        self._stalled.set()  # set = answering
        self._server: asyncio.base_events.Server | None = None
        self._runner: web.AppRunner | None = None
        self._context: ssl.SSLContext | None = None
        self.handshakes = 0
        self._announcer: Any = None

    @property
    def registers(self) -> SimulatedMeter:
        """The registers served: the simulated HAN's meter when shared (and running), else its own."""
        shared = self._shared() if self._shared is not None else None
        return shared if shared is not None else self._own

    # -- the utility's side ----------------------------------------------------------------------

    def register_client(self, certificate_pem: bytes) -> str:
        """Register a client certificate (what the customer does with its LFDI in the portal)."""
        der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
        client = lfdi(der)
        self.registered[client] = certificate_pem
        if self._context is not None:
            self._context.load_verify_locations(cadata=certificate_pem.decode())
        return client

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.started_at is None:
            self.started_at = self.clock()
            self.registers.tick(self.started_at)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, keepalive_timeout=self.idle_s, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._context = self._tls_context()
        runner_server = self._runner.server
        assert runner_server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _OneAtATime(runner_server(), self.connections), self.host, self.port, ssl=self._context,
            ssl_handshake_timeout=30)
        self.port = self._server.sockets[0].getsockname()[1]
        _LOGGER.info("Simulated IEEE 2030.5 meter on %s (LFDI %s)", self.url, self.lfdi)

    async def announce(self) -> None:
        """Announce itself by mDNS as the Itron meter does (``itrondnsserver-<SFDI>._smartenergy._tcp``,
        TXT txtvers/dcap/level/https), on loopback, until ``stop``."""
        from zeroconf import ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        name = f"itrondnsserver-{_sfdi(self.lfdi)}._smartenergy._tcp.local."
        info = ServiceInfo("_smartenergy._tcp.local.", name, addresses=[bytes([127, 0, 0, 1])], port=self.port,
                           properties={"txtvers": "1", "dcap": "/dcap", "level": "-S0", "https": str(self.port)},
                           server="simulated-meter.local.")
        try:
            self._announcer = AsyncZeroconf(interfaces=[self.host])
            await self._announcer.async_register_service(info)
        except OSError as err:  # no multicast here: the meter is only found by its address
            _LOGGER.info("Simulated 2030.5 meter not announced by mDNS: %s", err)
            self._announcer = None

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(CIPHER)
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: only registered clients get through
        _load_pair(context, self.key_pem, self.cert_pem)
        for pem in self.registered.values():
            context.load_verify_locations(cadata=pem.decode())
        return context

    async def stop(self) -> None:
        self._stalled.set()
        if self._announcer is not None:
            announcer, self._announcer = self._announcer, None
            with contextlib.suppress(Exception):
                await announcer.async_close()
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            for transport in list(self.connections.transports):
                transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- faults -----------------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop answering: connections are accepted, requests wait (a meter that hangs on Wi-Fi)."""
        self._stalled.clear()

    def unstall(self) -> None:
        self._stalled.set()

    @property
    def stalled(self) -> bool:
        return not self._stalled.is_set()

    async def drop(self) -> None:
        """Gone from the network (connections cut, the port closed) until ``resume``."""
        await self.stop()

    async def resume(self) -> None:
        """Back on the network, on the same port, with a fresh TLS session cache (it rebooted)."""
        await self.start()

    async def reboot(self, down_s: float = 1.0, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        await self.drop()
        await (sleep or asyncio.sleep)(down_s)
        await self.resume()

    def fail_handshakes(self, count: int = 1) -> None:
        """The next ``count`` connections fail at once (what one retry rides out)."""
        self.connections.cut += count

    def change_format(self, field_name: str) -> None:
        """A firmware that writes ``field_name`` another way: "demand" as a decimal, "summation" in hex."""
        self.formats.add(field_name)

    async def swap_certificate(self) -> str:
        """Another meter at the same address (the customer moved, or the utility swapped it)."""
        self.key_pem, self.cert_pem, self.lfdi = make_certificate("Itron IEEE 2030.5 meter (another)", self.clock())
        if self._server is not None:
            await self.stop()
            await self.start()
        return self.lfdi

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._stalled.wait()
        peer = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = peer.getpeercert(binary_form=True) if peer is not None else None
        if not der or lfdi(der) not in self.registered:
            return web.Response(status=403)
        path = request.path
        self.requests.append(path)
        now = self.clock()
        self.registers.tick(now)
        if request.method == "POST":
            return await self._post(request, now)
        if request.method != "GET":
            return web.Response(status=405)
        start, limit = _paging(request)
        if any(path.startswith(prefix) for prefix in self.broken):
            return web.Response(status=404)
        body = self._resource(path, now, start, limit)
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body.encode(), content_type=MEDIA)

    async def _post(self, request: web.Request, now: datetime) -> web.Response:
        if request.path != SUBJECT:
            return web.Response(status=405)
        text = (await request.read()).decode("utf-8", "replace")
        kind = text.split(" ", 1)[0].lstrip("<").split(">", 1)[0] if text.startswith("<") else "?"
        self.responses.append(ReceivedResponse(now, kind, text))
        return web.Response(status=201, headers={"Location": f"{SUBJECT}/{len(self.responses)}"})

    def _resource(self, path: str, now: datetime, start: int, limit: int) -> str | None:
        fixed: dict[str, Callable[[], str]] = {
            "/dcap": self._dcap,
            "/sdev": lambda: _x("SelfDevice", "/sdev", f"<DeviceInformationLink href=\"/sdev/di\"/>"
                                f"<sFDI>{_sfdi(self.lfdi)}</sFDI>"),
            "/sdev/di": lambda: _x("DeviceInformation", "/sdev/di",
                                   f"<lFDI>{self.lfdi}</lFDI><mfID>{ITRON_PEN}</mfID>"
                                   "<mfModel>Gen5 Riva (simulated)</mfModel><swVer>3.2.50</swVer>"),
            "/tm": lambda: self._time(now),
            "/upt": lambda: _list("UsagePointList", "/upt", 1, [self._usage_point()], 900),
            "/upt/1/mr": lambda: _list("MeterReadingList", "/upt/1/mr", len(self._meter_readings()),
                                       self._meter_readings(), 900),
            "/upt/1/mr/1/r": lambda: self._demand(now),
        }
        if path in fixed:
            return fixed[path]()
        parts = path.strip("/").split("/")
        if parts[:3] == ["upt", "1", "mr"] and len(parts) >= 5:
            return self._reading_path(parts[3:], now, start, limit)
        if parts[0] == "tp" and self.serves_pricing:
            return self._pricing(parts, now)
        if parts[0] == "msg" and self.serves_messaging:
            return self._messaging(parts, now)
        if parts[0] == "dr" and self.serves_drlc:
            return self._drlc(parts, now)
        return None

    def _dcap(self) -> str:
        links = ['<TimeLink href="/tm"/>', '<UsagePointListLink all="1" href="/upt"/>',
                 '<SelfDeviceLink href="/sdev"/>']
        if self.serves_pricing:
            links.append('<TariffProfileListLink all="1" href="/tp"/>')
        if self.serves_messaging:
            links.append('<MessagingProgramListLink all="1" href="/msg"/>')
        if self.serves_drlc:
            links.append('<DemandResponseProgramListLink all="1" href="/dr"/>')
        return _x("DeviceCapability", "/dcap", "".join(links), poll_rate=900)

    def _time(self, now: datetime) -> str:
        zone = self.registers.household.timezone
        local = now.astimezone(zone)
        dst = int((local.dst() or timedelta(0)).total_seconds())
        tz = int((local.utcoffset() or timedelta(0)).total_seconds()) - dst
        t = int(now.timestamp())
        return _x("Time", "/tm", f"<currentTime>{t}</currentTime><dstEndTime>{t + 86400 * 90}</dstEndTime>"
                  f"<dstOffset>{dst}</dstOffset><dstStartTime>{t - 86400 * 90}</dstStartTime>"
                  f"<localTime>{t + tz + dst}</localTime><quality>3</quality><tzOffset>{tz}</tzOffset>",
                  poll_rate=900)

    def _usage_point(self) -> str:
        return ('<UsagePoint href="/upt/1"><roleFlags>12</roleFlags><serviceCategoryKind>0</serviceCategoryKind>'
                f'<status>1</status><MeterReadingListLink all="{len(self._meter_readings())}" href="/upt/1/mr"/>'
                "</UsagePoint>")

    def _meter_readings(self) -> list[str]:
        readings = [
            '<MeterReading href="/upt/1/mr/1"><description>Instantaneous demand</description>'
            '<ReadingLink href="/upt/1/mr/1/r"/><ReadingTypeLink href="/upt/1/mr/1/rt"/></MeterReading>',
            '<MeterReading href="/upt/1/mr/2"><description>Summation received</description>'
            '<ReadingSetListLink all="1" href="/upt/1/mr/2/rs"/><ReadingTypeLink href="/upt/1/mr/2/rt"/></MeterReading>',
            '<MeterReading href="/upt/1/mr/3"><description>Summation delivered</description>'
            '<ReadingSetListLink all="1" href="/upt/1/mr/3/rs"/><ReadingTypeLink href="/upt/1/mr/3/rt"/></MeterReading>',
            '<MeterReading href="/upt/1/mr/17"><description>Maximum demand delivered</description>'
            '<ReadingLink href="/upt/1/mr/17/r"/><ReadingTypeLink href="/upt/1/mr/17/rt"/></MeterReading>',
        ]
        if self.serves_intervals:
            readings += [
                '<MeterReading href="/upt/1/mr/30"><description>Interval delivered</description>'
                '<ReadingSetListLink href="/upt/1/mr/30/rs"/><ReadingTypeLink href="/upt/1/mr/30/rt"/></MeterReading>',
                '<MeterReading href="/upt/1/mr/31"><description>Interval received</description>'
                '<ReadingSetListLink href="/upt/1/mr/31/rs"/><ReadingTypeLink href="/upt/1/mr/31/rt"/></MeterReading>',
            ]
        return readings

    def _reading_type(self, number: str) -> str | None:
        period = int(self.registers.period.total_seconds())
        types = {  # uom, flowDirection, accumulationBehaviour, kind, dataQualifier, intervalLength
            "1": (38, 1, 12, 37, 12, None),  # W, forward (the value is signed all the same), instantaneous
            "2": (72, 19, 9, 12, 12, None),  # Wh received, summation
            "3": (72, 1, 9, 12, 12, None),  # Wh delivered, summation
            "17": (38, 1, 6, 8, 8, None),  # maximum demand
            "30": (72, 1, 4, 12, 12, period),  # interval delivered (delta)
            "31": (72, 19, 4, 12, 12, period),
        }
        if number not in types or (number in ("30", "31") and not self.serves_intervals):
            return None
        uom, flow, accumulation, kind, qualifier, length = types[number]
        extra = f"<intervalLength>{length}</intervalLength>" if length else ""
        return _x("ReadingType", f"/upt/1/mr/{number}/rt",
                  f"<accumulationBehaviour>{accumulation}</accumulationBehaviour><dataQualifier>{qualifier}"
                  f"</dataQualifier><flowDirection>{flow}</flowDirection>{extra}<kind>{kind}</kind>"
                  f"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>{uom}</uom>")

    def _demand(self, now: datetime) -> str:
        watts = round(self.registers.demand_kw * 1000)
        if self.demand_sequence is not None:  # a benchmark's: every read a new value
            self.demand_sequence += 1
            watts = self.demand_sequence
        value = f"{watts / 1000:.3f}" if "demand" in self.formats else str(watts)
        return _x("Reading", "/upt/1/mr/1/r",
                  f"<timePeriod><duration>0</duration><start>{int(now.timestamp())}</start></timePeriod>"
                  f"<value>{value}</value>", poll_rate=self.poll_rate_s)

    def _summation_wh(self, number: str) -> int:
        kwh = float(self.registers.delivered_kwh if number == "3" else self.registers.received_kwh)
        return round(kwh * 1000)

    def _reading_path(self, parts: list[str], now: datetime, start: int, limit: int) -> str | None:
        number, rest = parts[0], parts[1:]
        if rest == ["rt"]:
            return self._reading_type(number)
        if number == "17" and rest == ["r"]:
            return _x("Reading", "/upt/1/mr/17/r", f"<value>{round(max(0.0, self.registers.demand_kw) * 1000)}</value>")
        base = f"/upt/1/mr/{number}"
        if number in ("2", "3"):
            reading = self._summation_reading(number, now)
            if rest == ["rs"]:
                return _list("ReadingSetList", f"{base}/rs", 1, [
                    f'<ReadingSet href="{base}/rs/1"><timePeriod><duration>0</duration><start>'
                    f'{int(now.timestamp())}</start></timePeriod><ReadingListLink all="1" href="{base}/rs/1/r"/>'
                    "</ReadingSet>"], self.poll_rate_s)
            if rest == ["rs", "1", "r"]:
                return _list("ReadingList", f"{base}/rs/1/r", 1, [reading], self.poll_rate_s)
            if rest == ["rs", "1", "r", "1"]:
                return '<?xml version="1.0" encoding="UTF-8"?>\n' + reading.replace("<Reading ", f'<Reading xmlns="{NS}" ', 1)
            return None
        if number in ("30", "31") and self.serves_intervals:
            return self._interval_path(number, rest, now, start, limit)
        return None

    def _summation_reading(self, number: str, now: datetime) -> str:
        wh = self._summation_wh(number)
        value = hex(wh) if "summation" in self.formats else str(wh)
        return (f'<Reading href="/upt/1/mr/{number}/rs/1/r/1"><timePeriod><duration>0</duration>'
                f"<start>{int(now.timestamp())}</start></timePeriod><value>{value}</value></Reading>")

    def _closed_intervals(self) -> list[Interval]:
        return list(self.registers.intervals)

    def _interval_path(self, number: str, rest: list[str], now: datetime, start: int, limit: int) -> str | None:
        base = f"/upt/1/mr/{number}/rs"
        span = timedelta(hours=SET_HOURS)
        newest = _floor_utc(now, span)
        sets = [newest - span * i for i in range(SETS_KEPT)]
        if rest == ["rs"]:
            page = sets[start:start + limit]
            return _list("ReadingSetList", base, len(sets), [
                f'<ReadingSet href="{base}/{int(s.timestamp())}"><timePeriod><duration>{int(span.total_seconds())}'
                f'</duration><start>{int(s.timestamp())}</start></timePeriod>'
                f'<ReadingListLink href="{base}/{int(s.timestamp())}/r"/></ReadingSet>' for s in page],
                self.poll_rate_s, results=len(page))
        if len(rest) == 3 and rest[0] == "rs" and rest[2] == "r" and rest[1].isdigit():
            set_start = datetime.fromtimestamp(int(rest[1]), UTC)
            inside = [i for i in self._closed_intervals() if set_start <= i.start < set_start + span]
            inside.sort(key=lambda i: i.start, reverse=True)  # newest first
            shown = inside[start:start + limit]
            length = int(self.registers.period.total_seconds())
            items = []
            for interval in shown:
                kwh = interval.consumed_kwh if number == "30" else interval.generated_kwh
                t = int(interval.start.timestamp())
                items.append(f'<Reading href="{base}/{rest[1]}/r/{t}"><timePeriod><duration>{length}</duration>'
                             f"<start>{t}</start></timePeriod><value>{round(kwh * 1000)}</value></Reading>")
            return _list("ReadingList", f"{base}/{rest[1]}/r", len(inside), items, self.poll_rate_s,
                         results=len(shown))
        return None

    # -- pricing ----------------------------------------------------------------------------------

    def _pricing(self, parts: list[str], now: datetime) -> str | None:
        rate = self.scenario.rate
        path = "/" + "/".join(parts)
        if path == "/tp":
            return _list("TariffProfileList", "/tp", 1, [
                f'<TariffProfile href="/tp/1"><currency>{rate["currency"]}</currency>'
                f"<pricePowerOfTenMultiplier>-5</pricePowerOfTenMultiplier><primacy>0</primacy>"
                f'<rateCode>{escape(rate["label"])}</rateCode><RateComponentListLink all="1" href="/tp/1/rc"/>'
                "<serviceCategoryKind>0</serviceCategoryKind></TariffProfile>"], 900)
        if path == "/tp/1/rc":
            return _list("RateComponentList", path, 1, [
                '<RateComponent href="/tp/1/rc/1"><ActiveTimeTariffIntervalListLink all="1" href="/tp/1/rc/1/acttti"/>'
                '<ReadingTypeLink href="/tp/1/rc/1/rt"/><roleFlags>03</roleFlags>'
                '<TimeTariffIntervalListLink all="1" href="/tp/1/rc/1/tti"/></RateComponent>'], 900)
        if path == "/tp/1/rc/1/rt":
            return _x("ReadingType", path, "<flowDirection>1</flowDirection><powerOfTenMultiplier>3"
                      "</powerOfTenMultiplier><uom>72</uom>")
        point = self.registers.current_price(now)
        ident = int(now.timestamp()) // 60 if point.ends_at is None else int(point.ends_at.timestamp())
        mrid = f"{ident:016X}{point.tier:08X}{ITRON_PEN:08X}"
        if path in ("/tp/1/rc/1/acttti", "/tp/1/rc/1/tti"):
            start = self._period_start(now)
            end = point.ends_at or (start + timedelta(hours=24))
            return _list("TimeTariffIntervalList", path, 1, [
                f'<TimeTariffInterval href="/tp/1/rc/1/tti/{ident}"><mRID>{mrid}</mRID>'
                f"<description>{escape(point.period or point.label)}</description>"
                f"<creationTime>{int(start.timestamp())}</creationTime><EventStatus><currentStatus>1</currentStatus>"
                f"<dateTime>{int(start.timestamp())}</dateTime><potentiallySuperseded>false</potentiallySuperseded>"
                f"</EventStatus><interval><duration>{int((end - start).total_seconds())}</duration>"
                f"<start>{int(start.timestamp())}</start></interval>"
                f'<ConsumptionTariffIntervalListLink all="2" href="/tp/1/rc/1/tti/{ident}/cti"/>'
                f"<touTier>{point.tier}</touTier></TimeTariffInterval>"], self.poll_rate_s * 6)
        if len(parts) == 7 and parts[4] == "tti" and parts[6] == "cti":
            blocks = rate["block_prices"]
            base_price = point.price - blocks[point.block]
            thresholds = [0.0, *rate["block_thresholds_kwh"]]
            items = [
                f'<ConsumptionTariffInterval href="{path}/{n + 1}"><consumptionBlock>{n + 1}</consumptionBlock>'
                f"<price>{round((base_price + blocks[n]) * 100000)}</price>"
                f"<startValue>{round(thresholds[n])}</startValue></ConsumptionTariffInterval>"
                for n in range(len(blocks))
            ]
            return _list("ConsumptionTariffIntervalList", path, len(items), items, 900)
        return None

    def _period_start(self, now: datetime) -> datetime:
        """When the time-of-use period in force began (local midnight without periods)."""
        local = now.astimezone(self.registers.household.timezone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        minute = local.hour * 60 + local.minute
        for period in self.scenario.rate["tou"]:
            if period["start"] <= minute < period["end"]:
                return (midnight + timedelta(minutes=period["start"])).astimezone(UTC)
        return midnight.astimezone(UTC)

    # -- messaging and DRLC ------------------------------------------------------------------------

    def _due(self, specs: list[dict[str, Any]], now: datetime) -> list[tuple[datetime, dict[str, Any]]]:
        assert self.started_at is not None
        return [(self.started_at + spec["at"], spec) for spec in specs if self.started_at + spec["at"] <= now]

    def _messaging(self, parts: list[str], now: datetime) -> str | None:
        path = "/" + "/".join(parts)
        if path == "/msg":
            return _list("MessagingProgramList", "/msg", 1, [
                '<MessagingProgram href="/msg/1"><locale>en_US</locale><primacy>0</primacy>'
                '<ActiveTextMessageListLink href="/msg/1/atxt"/><TextMessageListLink href="/msg/1/txt"/>'
                "</MessagingProgram>"], 900)
        if path not in ("/msg/1/atxt", "/msg/1/txt"):
            return None
        items = []
        for number, (sent, spec) in enumerate(self._due(self.scenario.messages, now), start=1):
            start = sent + spec.get("starts_in", timedelta(0))
            end = start + timedelta(minutes=spec["duration_min"])
            if path.endswith("atxt") and not start <= now < end:
                continue
            ident = spec.get("id") or number
            required = "04" if spec["confirm"] else "00"
            items.append(
                f'<TextMessage href="/msg/1/txt/{ident}" replyTo="{SUBJECT}" responseRequired="{required}">'
                f"<mRID>{ident:024X}{ITRON_PEN:08X}</mRID><creationTime>{int(sent.timestamp())}</creationTime>"
                f"<EventStatus><currentStatus>{1 if start <= now else 0}</currentStatus><dateTime>{int(sent.timestamp())}"
                f"</dateTime><potentiallySuperseded>false</potentiallySuperseded></EventStatus>"
                f"<interval><duration>{spec['duration_min'] * 60}</duration><start>{int(start.timestamp())}</start>"
                f"</interval><originator>{'Public alert' if spec['kind'] == 'public' else 'Utility'}</originator>"
                f"<priority>{IMPORTANCE_PRIORITY[spec['importance']]}</priority>"
                f"<textMessage>{escape(spec['text'])}</textMessage></TextMessage>")
        return _list("TextMessageList", path, len(items), items, self.poll_rate_s * 2)

    def _drlc(self, parts: list[str], now: datetime) -> str | None:
        path = "/" + "/".join(parts)
        if path == "/dr":
            return _list("DemandResponseProgramList", "/dr", 1, [
                '<DemandResponseProgram href="/dr/1"><primacy>1</primacy>'
                '<ActiveEndDeviceControlListLink href="/dr/1/actedc"/><EndDeviceControlListLink href="/dr/1/edc"/>'
                "</DemandResponseProgram>"], 900)
        if path not in ("/dr/1/edc", "/dr/1/actedc"):
            return None
        cancelled = {spec.get("id"): at for at, spec in self._due(self.scenario.cancellations, now)}
        items = []
        for sent, spec in self._due(self.scenario.events, now):
            start = sent + spec.get("starts_in", timedelta(0)) - spec.get("started_ago", timedelta(0))
            end = start + timedelta(minutes=spec["duration_min"])
            status = 2 if (spec["id"] in cancelled or None in cancelled) else (1 if start <= now < end else 0)
            if path.endswith("actedc") and (status == 2 or not start <= now < end):
                continue
            if now >= end and status != 2:
                continue
            category = _category(spec["device_class"])
            controls = ""
            if spec.get("cooling_offset_c") is not None or spec.get("heating_offset_c") is not None \
                    or spec.get("average_load_adjustment_pct") is not None:
                controls += "<Offset>"
                if spec.get("cooling_offset_c") is not None:
                    controls += f"<coolingOffset>{round(spec['cooling_offset_c'] * 10)}</coolingOffset>"
                if spec.get("heating_offset_c") is not None:
                    controls += f"<heatingOffset>{round(spec['heating_offset_c'] * 10)}</heatingOffset>"
                if spec.get("average_load_adjustment_pct") is not None:
                    controls += (f"<loadAdjustmentPercentageOffset>{spec['average_load_adjustment_pct'] * 100}"
                                 "</loadAdjustmentPercentageOffset>")
                controls += "</Offset>"
            if spec.get("duty_cycle_pct") is not None:
                controls = f"<DutyCycle><normalValue>{spec['duty_cycle_pct']}</normalValue></DutyCycle>" + controls
            items.append(
                f'<EndDeviceControl href="/dr/1/edc/{spec["id"]}" replyTo="{SUBJECT}" responseRequired="03">'
                f"<mRID>{spec['id']:024X}{ITRON_PEN:08X}</mRID><description>Event {spec['id']}</description>"
                f"<version>0</version><creationTime>{int(sent.timestamp())}</creationTime>"
                f"<EventStatus><currentStatus>{status}</currentStatus><dateTime>{int(sent.timestamp())}</dateTime>"
                f"<potentiallySuperseded>false</potentiallySuperseded></EventStatus>"
                f"<interval><duration>{spec['duration_min'] * 60}</duration><start>{int(start.timestamp())}</start>"
                f"</interval><randomizeStart>{300 if spec.get('randomize_start') else 0}</randomizeStart>"
                f"<deviceCategory>{category:X}</deviceCategory><drProgramMandatory>false</drProgramMandatory>"
                f"{controls}<overrideDuration>0</overrideDuration></EndDeviceControl>")
        return _list("EndDeviceControlList", path, len(items), items, self.poll_rate_s * 2)


# SE DeviceClass bit -> 2030.5 (2018) deviceCategory bits
_SE_TO_CATEGORY = {0: 0, 1: 1, 2: 3, 3: 4, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 10: 16, 11: 21}


def _category(device_class: int) -> int:
    bits = 0
    for se_bit, category_bit in _SE_TO_CATEGORY.items():
        if device_class & (1 << se_bit):
            bits |= 1 << category_bit
    return bits


def _sfdi(meter_lfdi: str) -> int:
    value = int(meter_lfdi[:9], 16)
    return value * 10 + (10 - sum(map(int, str(value))) % 10) % 10


def _x(root: str, href: str, inner: str, poll_rate: int | None = None) -> str:
    rate = f' pollRate="{poll_rate}"' if poll_rate else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}" href="{href}"{rate}>{inner}</{root}>'


def _list(root: str, href: str, total: int, items: list[str], poll_rate: int | None = None,
          results: int | None = None) -> str:
    rate = f' pollRate="{poll_rate}"' if poll_rate else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}" all="{total}" href="{href}"'
            f' results="{len(items) if results is None else results}"{rate}>{"".join(items)}</{root}>')


def _paging(request: web.Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        text = request.query.get(name, "")
        return int(text) if text.isdigit() and len(text) < 7 else default
    return number("s", 0), min(255, max(1, number("l", 25)))


def _floor_utc(at: datetime, span: timedelta) -> datetime:
    seconds = int(span.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // seconds * seconds, UTC)


def _load_pair(context: ssl.SSLContext, key_pem: bytes, cert_pem: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        key_path, cert_path = Path(folder) / "key.pem", Path(folder) / "cert.pem"
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        cert_path.write_bytes(cert_pem)
        context.load_cert_chain(cert_path, key_path)


def _kept_certificate(folder: Path | None, now: datetime) -> tuple[bytes, bytes, str]:
    """The meter's certificate: a new one, or the one kept in ``folder`` (a demo's meter stays the
    same meter across runs, as the appliance pinned it)."""
    if folder is None:
        return make_certificate("Itron IEEE 2030.5 meter (simulated)", now)
    key_path, cert_path = folder / "meter.key", folder / "meter.crt"
    if not (key_path.exists() and cert_path.exists()):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem, cert_pem, _ = make_certificate("Itron IEEE 2030.5 meter (simulated)", now)
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        cert_path.write_bytes(cert_pem)
    cert_pem = cert_path.read_bytes()
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return key_path.read_bytes(), cert_pem, lfdi(der)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def demo_meter(simulator: Any, clock: Clock, client_certificate_pem: bytes, keep_in: Path | None = None
               ) -> tuple[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]:
    """``ems demo --meter ieee2030_5``: a 2030.5 meter serving the simulated HAN's registers (so the
    figures are the ZigBee demo's, the home devices' load included), the appliance's certificate
    registered; the sections that point the appliance at it (and turn the ZigBee meter link off)."""
    meter = Ieee2030Meter(simulator.scenario, clock, port=free_port(), poll_rate_s=2,
                          shared=lambda: getattr(simulator.han, "meter", None), keep_in=keep_in)
    meter.register_client(client_certificate_pem)
    sections = {
        "ieee2030_5": {"enabled": True, "url": meter.url, "poll_min_s": 2, "interval_s": 60, "history_h": 2},
        "zigbee_se": {"enabled": False},
    }

    async def start() -> None:
        await meter.start()
        await meter.announce()  # the Commissioning page's "Find" lists it

    return sections, start, meter.stop
