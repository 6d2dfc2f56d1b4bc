"""Provisioning the home's devices (UC134): joining, discovery, program parameters, the log, the test tool.

The core's side, with no protocol in it. A home network (``integrations.zigbee_home``) offers a
``ProvisioningPort``: open joining (with install codes), list the devices it found with what
their clusters say they can do, send one device its program parameters and say whether it
acknowledged, test a device's link and scan. ``Provisioning`` is the facade the web pages, the
API and the ``ems han`` commands use: it keeps the customer's choices for each device (name,
location, which programs it takes part in; a door sensor can stay out), builds each device's
program parameters (enrollment group, device class, tier labels and prices where it is price
aware), stores each acknowledgement and readiness, and keeps the **provisioning log**: every
device interaction, stage, message and result during installation and provisioning (I1FR47),
published on the bus as it happens (the pages show it live) and kept in the store.

The log's ``detail`` is in plain words for the installer; ``stage`` and ``result`` are the fixed
names below, which the pages translate.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from ems.errors import NotFound, NotReady, RejectedCommand

_LOGGER = logging.getLogger(__name__)

# The stages of a device's installation, in order, then the tools' own.
STAGES = ("joining", "joined", "discovered", "chosen", "provisioning", "acknowledged", "test", "scan", "clock")
RESULTS = ("ok", "failed", "waiting", "info")
PROGRAMS = ("load_control", "pricing")  # the utility's DR load control, its price signals
# What a device can do, read from its clusters (I1FR40, I1FR44 "program features available").
CAPABILITIES = ("load_control", "price_aware", "thermostat", "metering", "battery", "switch", "time", "sensor")
# Which capability lets a device take part in which program.
PROGRAM_NEEDS = {"load_control": ("load_control", "thermostat", "switch", "battery"), "pricing": ("price_aware",)}
READINESS = ("not_provisioned", "waiting", "ready", "refused", "not_answering")
MAX_PERMIT_S = 254  # Mgmt_Permit_Joining_req: 255 would mean "for ever"
KEPT_IN_MEMORY = 2000  # the newest log entries the pages get without asking the store


@dataclass(frozen=True, slots=True)
class ProvisioningEntry:
    """One step in the provisioning log (a bus event as well): when, which device, what, how it went."""

    at: datetime
    device_id: str  # "" for the network as a whole (joining opened, a scan)
    stage: str  # one of STAGES
    message: str  # what went over the air, in the protocol's words ("Device_annce", "Write Attributes")
    result: str  # one of RESULTS
    detail: str = ""  # plain words for the installer

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class JoinWindow:
    """Joining is open until ``until`` (None: closed); the install codes given for it, by device."""

    until: datetime | None
    with_install_code: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A home device as its network found it (I1FR44: ID, address, features, time, credentials)."""

    device_id: str  # IEEE address
    address: str  # its network (NWK) address, e.g. "0x2001"
    manufacturer: str
    model: str
    capabilities: tuple[str, ...]  # CAPABILITIES names
    credentials: str  # "install_code" or "network_key": how it was admitted; never the key
    joined_at: datetime | None
    device_time: datetime | None = None  # the time the appliance last set its clock to (None: not yet)
    answering: bool = True
    name: str = ""  # the name the appliance knows it by (its configuration's), if any


@dataclass(frozen=True, slots=True)
class TierPrice:
    tier: int
    label: str
    price_per_kwh: float
    currency: str


@dataclass(frozen=True, slots=True)
class ProgramParameters:
    """What the EMS sends one device for the programs it takes part in (I1FR41)."""

    programs: tuple[str, ...]
    enrollment_group: int
    device_class: int
    tiers: tuple[TierPrice, ...] = ()  # only for a price-aware device in the pricing program


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The device's answer to its program parameters: whether it took them, and its readiness."""

    accepted: bool
    readiness: str  # READINESS
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkTest:
    """One device's link: quality, a round trip and its packet counters (I1FR42), with guidance."""

    device_id: str
    ok: bool
    lqi: int | None
    rssi_dbm: int | None
    round_trip_ms: float | None
    sent: int
    received: int
    retries: int
    failures: int
    problem: str | None = None  # a GUIDANCE key when not ok
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NetworkScan:
    """What the radio can honestly say about the networks and channels around it."""

    channel: int | None
    pan_id: str
    extended_pan_id: str
    permit_joining: bool
    devices: int
    energy_by_channel: dict[int, float] = field(default_factory=dict)  # empty: the radio cannot measure
    note: str = ""


# Plain guidance for each failure (I1FR43): what is wrong and what to do next. The pages translate.
GUIDANCE = {
    "out_of_range": "The device does not answer. Move it closer to the appliance (or add a plug-in device "
                    "between them as a repeater), check it has power, then run the test again.",
    "not_joining": "The device has not joined. Open joining here first, then put the device in joining mode "
                   "(see its manual: usually hold its button until its light blinks) within the countdown.",
    "wrong_install_code": "The install code is not valid. Type it again exactly as printed on the device's label "
                          "(12, 16, 24 or 32 digits and letters A-F, then its 4-character check value).",
    "not_compatible": "The device joined but cannot take part in this program. Leave it out of the program, or "
                      "check with its maker that it supports Smart Energy load control or pricing.",
    "refused": "The device refused the program settings. Reset it to factory settings, let it join again, "
               "then send the settings again.",
}


class ProvisioningPort(Protocol):
    """What a home network offers for provisioning (``integrations.zigbee_home.provision``)."""

    def join_window(self) -> JoinWindow: ...

    async def permit(self, duration_s: int, install_codes: dict[str, str]) -> JoinWindow: ...

    def found(self) -> list[FoundDevice]: ...

    async def send_program(self, device_id: str, parameters: ProgramParameters) -> Acknowledgement: ...

    async def test(self, device_id: str) -> LinkTest: ...

    async def scan(self) -> NetworkScan: ...

    def totals(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """The customer's choices for a device and what it acknowledged (one ``provisioned_devices`` row)."""

    device_id: str
    name: str = ""
    location: str = ""
    programs: tuple[str, ...] = ()  # empty: stays out of every program
    enrollment_group: int | None = None
    device_class: int | None = None
    acknowledged_at: datetime | None = None
    readiness: str = "not_provisioned"
    changed_at: datetime | None = None


class Provisioning:
    """The facade: the log, the choices, the parameters sent and acknowledged, the tools."""

    def __init__(self, hub: Any) -> None:
        self._hub = hub
        self.port: ProvisioningPort | None = None
        self.recent: deque[ProvisioningEntry] = deque(maxlen=KEPT_IN_MEMORY)
        self.choices: dict[str, DeviceChoice] = {}
        self._unwritten: list[ProvisioningEntry] = []
        self._writing: asyncio.Task[Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the choices kept in the store (the log is read from it when asked)."""
        from ems.store import provisioning as sql

        rows = await self._hub.store.read("read the provisioned devices", sql.choices)
        self.choices = {row.device_id: row for row in rows}

    async def stop(self) -> None:
        await self.flush()

    def attach(self, port: ProvisioningPort | None) -> None:
        """The home network offers (or withdraws, with None) its side."""
        self.port = port

    def _port(self) -> ProvisioningPort:
        if self.port is None:
            raise NotReady("the home network is not running")
        return self.port

    # -- the log ---------------------------------------------------------------------------

    def log(self, device_id: str, stage: str, message: str, result: str, detail: str = "") -> ProvisioningEntry:
        """Record one step: published at once (the pages show it), written to the store soon after."""
        entry = ProvisioningEntry(self._hub.clock(), device_id, stage, message, result, detail)
        self.recent.append(entry)
        self._unwritten.append(entry)
        self._hub.bus.publish(entry)
        if self._writing is None or self._writing.done():
            self._writing = self._hub.create_task(self._write_soon(), "provisioning-log")
        return entry

    async def _write_soon(self) -> None:
        """Write what is waiting in one transaction (a burst of twenty devices is one write, not 200)."""
        from ems.store import provisioning as sql

        await asyncio.sleep(0)
        while self._unwritten:
            batch, self._unwritten = self._unwritten, []
            try:
                await self._hub.store.write("keep the provisioning log",
                                            lambda conn, batch=batch: sql.add_entries(conn, batch))
            except Exception as err:  # noqa: BLE001 - the log stays in memory and on the pages
                _LOGGER.warning("Could not keep %d provisioning log entries: %s", len(batch), err)

    async def flush(self) -> None:
        """Wait until every entry so far is in the store."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def entries(self, device_id: str | None = None, stage: str | None = None,
                      result: str | None = None, limit: int = 5000) -> list[ProvisioningEntry]:
        """The log from the store, oldest first, filtered (each filter None: any)."""
        from ems.store import provisioning as sql

        await self.flush()
        found: list[ProvisioningEntry] = await self._hub.store.read(
            "read the provisioning log", sql.entries, device_id, stage, result, limit)
        return found

    # -- joining and discovery -------------------------------------------------------------

    def join_window(self) -> JoinWindow:
        return self.port.join_window() if self.port is not None else JoinWindow(None)

    async def permit(self, duration_s: int, install_codes: dict[str, str] | None = None) -> JoinWindow:
        """Open joining for ``duration_s`` seconds (0 closes it), admitting these devices by install code."""
        if not 0 <= duration_s <= MAX_PERMIT_S:
            raise RejectedCommand(f"joining can be opened for 0 to {MAX_PERMIT_S} seconds, not {duration_s}")
        return await self._port().permit(duration_s, dict(install_codes or {}))

    def devices(self) -> list[dict[str, Any]]:
        """Every device found, with the customer's choices and its readiness, for the pages and the API."""
        found = self.port.found() if self.port is not None else []
        result = []
        for device in found:
            choice = self.choices.get(device.device_id) or DeviceChoice(device.device_id)
            result.append({
                "device_id": device.device_id,
                "address": device.address,
                "manufacturer": device.manufacturer,
                "model": device.model,
                "capabilities": list(device.capabilities),
                "credentials": device.credentials,
                "joined_at": device.joined_at.isoformat() if device.joined_at else None,
                "device_time": device.device_time.isoformat() if device.device_time else None,
                "answering": device.answering,
                "name": choice.name or device.name or device.model,
                "location": choice.location,
                "programs": list(choice.programs),
                "possible_programs": [p for p in PROGRAMS if eligible(p, device.capabilities)],
                "enrollment_group": choice.enrollment_group,
                "device_class": choice.device_class,
                "acknowledged_at": choice.acknowledged_at.isoformat() if choice.acknowledged_at else None,
                "readiness": choice.readiness,
            })
        return result

    def _found(self, device_id: str) -> FoundDevice:
        for device in self._port().found():
            if device.device_id == device_id:
                return device
        raise NotFound(f"no device {device_id} has joined the home network")

    # -- the customer's choices and the parameters -----------------------------------------

    async def choose(self, device_id: str, *, name: str | None = None, location: str | None = None,
                     programs: Sequence[str] | None = None) -> DeviceChoice:
        """Name a device, say where it is and which programs it takes part in (none: it stays out)."""
        device = self._found(device_id)
        choice = self.choices.get(device_id) or DeviceChoice(device_id)
        if programs is not None:
            unknown = [p for p in programs if p not in PROGRAMS]
            if unknown:
                raise RejectedCommand(f"unknown program {unknown[0]!r}; the programs are {', '.join(PROGRAMS)}")
            for program in programs:
                if not eligible(program, device.capabilities):
                    raise RejectedCommand(f"this device cannot take part in {program.replace('_', ' ')}: "
                                          + GUIDANCE["not_compatible"])
            choice = replace(choice, programs=tuple(p for p in PROGRAMS if p in programs),
                             readiness="not_provisioned" if tuple(programs) != choice.programs else choice.readiness)
        if name is not None:
            choice = replace(choice, name=name.strip()[:128])
        if location is not None:
            choice = replace(choice, location=location.strip()[:128])
        choice = replace(choice, changed_at=self._hub.clock())
        await self._keep(choice)
        what = ", ".join(p.replace("_", " ") for p in choice.programs) or "no program"
        self.log(device_id, "chosen", "choice", "ok",
                 f"named '{choice.name or device.name or device.model}'"
                 + (f", in {choice.location}" if choice.location else "") + f"; takes part in {what}")
        return choice

    def parameters(self, device_id: str) -> ProgramParameters:
        """What ``device_id`` is to be sent for the programs chosen for it."""
        device = self._found(device_id)
        choice = self.choices.get(device_id) or DeviceChoice(device_id)
        group = self._enrollment_group()
        tiers: tuple[TierPrice, ...] = ()
        if "pricing" in choice.programs and "price_aware" in device.capabilities:
            tiers = self._tiers()
        return ProgramParameters(choice.programs, group, device_class_for(device.capabilities), tiers)

    def _enrollment_group(self) -> int:
        """The utility's enrollment group: demand response's (which the utility's configuration sets,
        C6 3.1 step 15), else the configured ``demand_response.enrollment_group``."""
        control = getattr(self._hub, "control", None)
        settings = getattr(getattr(control, "load_control", None), "settings", None)
        if settings is not None:
            return int(settings.enrollment_group)
        section = self._hub.config.sections.get("demand_response") or {}
        return int(section.get("enrollment_group", 0)) if isinstance(section, dict) else 0

    def _tiers(self) -> tuple[TierPrice, ...]:
        """The tier labels and prices in force now and announced, from every meter (newest per tier)."""
        now = self._hub.clock()
        by_tier: dict[int, TierPrice] = {}
        state = self._hub.state
        for meter_id in list(state.prices):
            active = state.active_price(meter_id, now)
            for price in [*( [active] if active else []), *state.upcoming_prices(meter_id, now)]:
                by_tier.setdefault(price.tier, TierPrice(price.tier, price.rate_label, price.price_per_kwh,
                                                         price.currency))
        return tuple(by_tier[t] for t in sorted(by_tier))

    async def provision(self, device_id: str) -> DeviceChoice:
        """Send the device its program parameters; store its acknowledgement and readiness."""
        choice = self.choices.get(device_id) or DeviceChoice(device_id)
        if not choice.programs:
            raise RejectedCommand("choose at least one program for this device first (or leave it out)")
        parameters = self.parameters(device_id)
        await self._keep(replace(choice, readiness="waiting", changed_at=self._hub.clock()))
        ack = await self._port().send_program(device_id, parameters)
        now = self._hub.clock()
        choice = replace(self.choices[device_id], enrollment_group=parameters.enrollment_group,
                         device_class=parameters.device_class, readiness=ack.readiness,
                         acknowledged_at=now if ack.accepted else None, changed_at=now)
        await self._keep(choice)
        self.log(device_id, "acknowledged", "acknowledgement", "ok" if ack.accepted else "failed",
                 ack.detail or ("ready" if ack.accepted else GUIDANCE["refused"]))
        return choice

    async def _keep(self, choice: DeviceChoice) -> None:
        from ems.store import provisioning as sql

        self.choices[choice.device_id] = choice
        await self._hub.store.write("keep a device's provisioning", lambda conn: sql.put_choice(conn, choice))
        self._hub.bus.publish(ProvisioningChanged(choice.device_id, self._hub.clock()))

    # -- the test tool ---------------------------------------------------------------------

    async def test(self, device_ids: Iterable[str] | None = None) -> list[LinkTest]:
        """Test each device's link (every device found when None), logging each result."""
        port = self._port()
        ids = list(device_ids) if device_ids is not None else [d.device_id for d in port.found()]
        results = []
        for device_id in ids:
            result = await port.test(device_id)
            results.append(result)
        return results

    async def scan(self) -> NetworkScan:
        return await self._port().scan()

    def totals(self) -> dict[str, int]:
        return self.port.totals() if self.port is not None else {"sent": 0, "received": 0, "retries": 0, "failures": 0}


@dataclass(frozen=True, slots=True)
class ProvisioningChanged:
    """A device's choices or readiness changed (the pages refresh its row)."""

    device_id: str
    at: datetime


def eligible(program: str, capabilities: Iterable[str]) -> bool:
    return bool(set(PROGRAM_NEEDS[program]) & set(capabilities))


# SE DRLC device class bits (SE 1.x Table D-2) by what a device does.
_CLASS_BITS = (("thermostat", 0x0001), ("load_control", 0x0010), ("battery", 0x0800), ("switch", 0x0080))


def device_class_for(capabilities: Iterable[str]) -> int:
    """The DRLC device class a device is enrolled with, from what it can do (simple residential load if unknown)."""
    have = set(capabilities)
    for capability, bit in _CLASS_BITS:
        if capability in have:
            return bit
    return 0x0080


def to_csv(entries: Iterable[ProvisioningEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["at", "device_id", "stage", "message", "result", "detail"])
    for entry in entries:
        writer.writerow([entry.at.isoformat(), entry.device_id, entry.stage, entry.message, entry.result,
                         entry.detail])
    return out.getvalue()


def to_json(entries: Iterable[ProvisioningEntry]) -> str:
    return json.dumps({"entries": [e.as_dict() for e in entries]}, indent=1)
