"""Fuzz targets of the utility-program and MQTT integrations (registered in ``bench.fuzz.targets``).

``openadr_event``
    What the VEN does with an ``oadrEvent`` as openleadr hands it over (a parsed dict): the input
    is JSON whose strings that read as ISO times or durations become ``datetime``/``timedelta``
    (what openleadr's parser makes of them), given to ``Ven._on_event`` on a hub with a fixed clock.
    Rejection: none (a malformed event is answered optOut, counted, logged once). Invariants: the
    answer is optIn/optOut; each ``LoadControlEvent`` published has an aware start, a duration of
    1..``MAX_DURATION_MIN`` minutes and an end that can be computed, a known criticality and a
    device class within SE's; each cancellation names an event published before.
``openadr_xml``
    The raw bytes of a VTN's answer as openleadr's client reads them (``validate_xml_schema`` then
    ``parse_message``), and each event of an ``oadrDistributeEvent`` through ``Ven._on_event`` as
    above. Rejection: what openleadr logs and drops (a schema or parse error).
``mqtt``
    The MQTT handlers, topic and payload bytes: the first byte picks a topic (a Home Assistant
    command: ``opt_out``, ``take_out``, ``put_back``, ``opt_in``, ``confirm``, an unknown one, a
    ``/result``; or zigbee2mqtt's ``bridge/devices``, ``bridge/state``, a device's state or
    availability), the rest is the payload. Commands run ``MqttBridge._command`` on a real hub
    (its SQLite store with an owner and a token, the DR core with an event running, a meter heard);
    zigbee2mqtt's run ``Zigbee2Mqtt.handle``. Rejection: a command refused (its answer says why).
    Invariants: every command answers once on ``<topic>/result`` with JSON ``{"ok": bool, ...}``
    (an error string when not ok); zigbee2mqtt's readings carry finite values of the right types.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.fuzz.targets import NOW, Invariant, Target, kind_of

MAX_DURATION_MIN = 7 * 24 * 60  # the VEN's own bound (integrations.openadr.ven)
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?$")
_ISO_DURATION = re.compile(r"^[+-]?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _typed(value: Any) -> Any:
    """JSON as openleadr's parser types it: ISO times and durations become datetime and timedelta."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str):
        if _ISO_TIME.match(value):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        match = _ISO_DURATION.match(value)
        if match and any(match.groups()):
            days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            try:
                delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            except OverflowError:
                return value
            return -delta if value.startswith("-") else delta
    return value


class _Hub:
    """What the VEN reads of the hub: its clock, bus, state, the DR core's runs and the outbox."""

    def __init__(self) -> None:
        from ems.bus import EventBus
        from ems.clock import FixedClock
        from ems.state import CurrentState

        self.clock = FixedClock(NOW)
        self.bus = EventBus()
        self.state = CurrentState()
        self.state.attach(self.bus)

        class _LoadControl:
            def run(self, meter_id: str, issuer_event_id: int) -> None:
                return None  # not kept by the DR core: the VEN answers optOut

        class _Control:
            load_control = _LoadControl()

        self.control = _Control()


class _VenTarget(Target):
    def __init__(self) -> None:
        super().__init__()
        from ems.model import EventCancellation, LoadControlEvent
        from integrations.openadr import VenSettings
        from integrations.openadr.ven import Ven

        self.loop = asyncio.new_event_loop()
        self.hub = _Hub()
        self.ven = Ven(self.hub, VenSettings(vtn_url="http://127.0.0.1:9/OpenADR2/Simple/2.0b", ven_name="fuzz"))
        self.published: list[Any] = []
        self.hub.bus.listen(LoadControlEvent, self.published.append)
        self.hub.bus.listen(EventCancellation, self.published.append)

    def _event(self, event: Any) -> str:
        from ems.model import Criticality, DeviceClass, EventCancellation, LoadControlEvent

        before = len(self.published)
        answer = self.loop.run_until_complete(self.ven._on_event(event))
        if answer not in ("optIn", "optOut"):
            raise Invariant(f"the VEN answered {answer!r}")
        made = 0
        for item in self.published[before:]:
            if isinstance(item, LoadControlEvent):
                made += 1
                if item.start.tzinfo is None or item.received_at.tzinfo is None:
                    raise Invariant(f"naive time in {item}")
                if not 1 <= item.duration_min <= MAX_DURATION_MIN:
                    raise Invariant(f"duration {item.duration_min} min")
                item.end  # noqa: B018 - computable (no overflow)
                Criticality(item.criticality)
                if not 0 < int(item.device_class) <= 0x0FFF or not isinstance(item.device_class, DeviceClass):
                    raise Invariant(f"device class {item.device_class!r}")
                for pct, low, high in ((item.duty_cycle_pct, 0, 100), (item.average_load_adjustment_pct, -100, 100)):
                    if pct is not None and not low <= pct <= high:
                        raise Invariant(f"a percentage out of range: {item}")
                if item.cooling_setpoint_c is not None and not math.isfinite(item.cooling_setpoint_c):
                    raise Invariant(f"setpoint {item.cooling_setpoint_c}")
            elif isinstance(item, EventCancellation) and item.effective_at.tzinfo is None:
                raise Invariant(f"naive time in {item}")
        if len(self.published) > 10_000:
            del self.published[:]
        return f"accepted {answer} ({'some' if made else 'no'} events)"

    def close(self) -> None:
        super().close()
        self.loop.close()


def _event_seeds() -> list[dict[str, Any]]:
    base = {"event_descriptor": {"event_id": "ev-1", "modification_number": 0, "event_status": "far",
                                 "priority": 1, "market_context": "http://market", "created_date_time":
                                 "2026-07-15T11:00:00Z"},
            "active_period": {"dtstart": "2026-07-15T12:05:00Z", "duration": "PT1H"},
            "targets": [{"ven_id": "ven-home"}],
            "event_signals": [{"signal_name": "SIMPLE", "signal_type": "level", "signal_id": "s1",
                               "intervals": [{"dtstart": "2026-07-15T12:05:00Z", "duration": "PT30M", "uid": 0,
                                              "signal_payload": 2.0},
                                             {"duration": "PT30M", "uid": 1, "signal_payload": 1.0}]}]}
    load = json.loads(json.dumps(base))
    load["event_signals"] = [
        {"signal_name": "LOAD_CONTROL", "signal_type": "x-loadControlCapacity", "intervals": [
            {"duration": "PT15M", "uid": 0, "signal_payload": 0.5}]},
        {"signal_name": "LOAD_DISPATCH", "signal_type": "delta", "intervals": [
            {"duration": "PT15M", "uid": 0, "signal_payload": 2.5}]},
        {"signal_name": "ELECTRICITY_PRICE", "signal_type": "price", "intervals": [
            {"duration": "PT15M", "uid": 0, "signal_payload": 0.9}]}]
    load["targets_by_type"] = {"end_device_asset": [{"mrid": "pool_pump"}]}
    cancelled = json.loads(json.dumps(base))
    cancelled["event_descriptor"]["event_status"] = "cancelled"
    modified = json.loads(json.dumps(base))
    modified["event_descriptor"]["modification_number"] = 1
    return [base, load, modified, cancelled]


class OpenAdrEvent(_VenTarget):
    """``Ven._on_event`` on a parsed event (see the module docstring)."""

    name = "openadr_event"

    def _run(self, data: bytes) -> str:
        try:
            event = _typed(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "rejected: not JSON"
        return self._event(event)

    def seeds(self) -> list[bytes]:
        return [json.dumps(e).encode() for e in _event_seeds()]

    def words(self) -> list[bytes]:
        return [w.encode() for w in (
            '"event_descriptor"', '"event_id"', '"modification_number"', '"event_status"', '"cancelled"',
            '"active_period"', '"dtstart"', '"duration"', '"event_signals"', '"signal_name"', '"signal_type"',
            '"intervals"', '"uid"', '"signal_payload"', '"targets"', '"targets_by_type"', '"end_device_asset"',
            '"mrid"', '"SIMPLE"', '"LOAD_CONTROL"', '"LOAD_DISPATCH"', '"ELECTRICITY_PRICE"', '"ENERGY_PRICE"',
            '"x-loadControlCapacity"', '"x-loadControlPercentOffset"', '"x-loadControlLevelOffset"',
            '"x-loadControlSetpoint"', '"delta"', '"setpoint"', '"price"', '"priceMultiplier"',
            '"priceRelative"', '"PT1H"', '"P9999D"', '"2026-07-15T12:00:00Z"', '"9999-12-31T23:59:59Z"', "1e308")]


def _distribute_event_xml() -> bytes:
    """An oadrDistributeEvent as openleadr's VTN writes it (its own message templates)."""
    from openleadr import enums, objects
    from openleadr.messaging import create_message

    start = NOW + timedelta(minutes=5)
    event = objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id="ev-1", modification_number=0, event_status=enums.EVENT_STATUS.FAR, priority=1,
            market_context="http://market", created_date_time=NOW),
        active_period=objects.ActivePeriod(dtstart=start, duration=timedelta(hours=1)),
        event_signals=[objects.EventSignal(
            signal_name="SIMPLE", signal_type="level", signal_id="s1",
            intervals=[objects.Interval(dtstart=start, duration=timedelta(minutes=30), signal_payload=2.0),
                       objects.Interval(dtstart=start + timedelta(minutes=30), duration=timedelta(minutes=30),
                                        signal_payload=1.0)])],
        targets=[objects.Target(ven_id="ven-home")], response_required="always")
    text = create_message("oadrDistributeEvent", request_id="req-1", vtn_id="TEST_VTN", events=[event])
    return text.encode() if isinstance(text, str) else bytes(text)


class OpenAdrXml(_VenTarget):
    """A VTN's answer through openleadr's parser, then each event through the VEN."""

    name = "openadr_xml"

    def _run(self, data: bytes) -> str:
        from openleadr.messaging import parse_message, validate_xml_schema

        try:  # openleadr's client (_perform_request) logs these and drops the message
            validate_xml_schema(data)
            message_type, payload = parse_message(data)
        except Exception as err:  # noqa: BLE001 - what openleadr catches, the documented rejection
            return f"rejected: {type(err).__name__}: {kind_of(str(err))[:40]}"
        if message_type != "oadrDistributeEvent":
            return f"accepted {message_type}"
        answers = [self._event(event) for event in payload.get("events") or []]
        return f"accepted oadrDistributeEvent ({len(answers)} events: {', '.join(sorted(set(answers)))})"

    def seeds(self) -> list[bytes]:
        return [_distribute_event_xml()]

    def words(self) -> list[bytes]:
        seed = _distribute_event_xml().decode()
        elements = set(re.findall(r"</?([A-Za-z][\w:]*)", seed))
        return sorted({f"<{e}>".encode() for e in elements} | {f"</{e}>".encode() for e in elements}
                      | {b"PT1H", b"P9999D", b"cancelled", b"LOAD_CONTROL", b"x-loadControlCapacity"})


# --- MQTT -------------------------------------------------------------------------------


class _Sink:
    """Where a command's answer goes (the broker connection's ``publish``)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    async def publish(self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, payload))


COMMAND_NAMES = ("opt_out", "take_out", "put_back", "opt_in", "confirm", "reboot", "opt_out/result")
Z2M_TOPICS = ("bridge/devices", "bridge/state", "garage/pool_pump_plug", "garage/pool_pump_plug/availability",
              "hall_thermostat", "hall_thermostat/availability")


class Mqtt(Target):
    """The MQTT command handlers and zigbee2mqtt's message handler (see the module docstring)."""

    name = "mqtt"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ems-fuzz-mqtt-"))
        self.loop = asyncio.new_event_loop()
        self.token = self.loop.run_until_complete(self._start())

    async def _start(self) -> str:
        import rules
        from ems.accounts import Accounts, Role, Scope
        from ems.clock import FixedClock
        from ems.config import load_config
        from ems.dr.component import DemandResponse
        from ems.dr.rulebook import RuleBook
        from ems.hub import Hub
        from ems.model import (
            Criticality,
            DeviceClass,
            DeviceInfo,
            DeviceKind,
            DeviceReading,
            LoadControlEvent,
            MeterReading,
        )
        from integrations import mqtt
        from integrations.mqtt.bridge import MqttBridge
        from integrations.mqtt.zigbee2mqtt import Zigbee2Mqtt
        from tests.integrations.mqtt.zigbee2mqtt_sim import COORDINATOR, PLUG, SENSOR, THERMOSTAT

        config = self.folder / "config"
        config.mkdir()
        (config / "ems.yaml").write_text("site: {name: Fuzz home, timezone: UTC}\n")
        (config / "rules.yaml").write_text("rules:\n  - name: Follow\n    triggers: [{event: active}]\n"
                                           "    action: follow_event\n")
        hub = self.hub = Hub(load_config(config), self.folder / "data", FixedClock(NOW))
        await hub.store.open()
        book = RuleBook(config / "rules.yaml", rules.parse_rules, rules.evaluate, rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 3600})
        await hub.control.start()
        hub.bus.publish(DeviceInfo("00:0d:6f:00:00:00:00:02", "Pool pump", DeviceKind.SWITCH,
                                   DeviceClass.POOL_PUMP, nominal_kw=1.5))
        hub.bus.publish(DeviceReading("00:0d:6f:00:00:00:00:02", NOW, on=True, power_kw=1.5))
        hub.bus.publish(LoadControlEvent("main", 7, DeviceClass.POOL_PUMP, 0, NOW - timedelta(minutes=1), 60,
                                         Criticality.LEVEL_2, NOW))
        settings = mqtt.settings_from_section(mqtt.CONFIG_SCHEMA({"host": "127.0.0.1", "site_id": "fuzz",
                                                                  "zigbee2mqtt": {"enabled": True}}))
        self.bridge = MqttBridge(hub, settings)
        self.bridge._on_reading(MeterReading("main", NOW, demand_kw=2.0))  # the meter's slug known
        self.z2m = Zigbee2Mqtt(hub, settings)
        await self.z2m.handle("zigbee2mqtt/bridge/devices", json.dumps([COORDINATOR, PLUG, THERMOSTAT, SENSOR]).encode())
        accounts = Accounts(hub.store)
        owner = await accounts.create_user("owner", "correct horse battery", Role.OWNER)
        self.device_ids = ("00:0d:6f:00:00:00:00:02",)
        return (await accounts.create_token(owner, "fuzz", list(Scope))).secret

    def _run(self, data: bytes) -> str:
        pick, payload = (data[0] if data else 0), data[1:]
        choices = len(COMMAND_NAMES) + len(Z2M_TOPICS)
        index = pick % choices
        if index < len(COMMAND_NAMES):
            return self.loop.run_until_complete(self._command(COMMAND_NAMES[index], payload))
        return self.loop.run_until_complete(self._z2m(Z2M_TOPICS[index - len(COMMAND_NAMES)], payload))

    async def _command(self, name: str, payload: bytes) -> str:
        sink = _Sink()
        topic = self.bridge.topics.command("main", name)
        await self.bridge._command(sink, topic, payload)  # type: ignore[arg-type]
        if name.endswith("/result"):
            if sink.published:
                raise Invariant(f"answered a result topic: {sink.published}")
            return "ignored (a result)"
        if len(sink.published) != 1 or sink.published[0][0] != f"{topic}/result":
            raise Invariant(f"answers: {sink.published}")
        answer = json.loads(sink.published[0][1])
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            raise Invariant(f"answer {answer!r}")
        if not answer["ok"]:
            if not isinstance(answer.get("error"), str) or not answer["error"]:
                raise Invariant(f"a refusal without why: {answer!r}")
            return f"{name} rejected: {kind_of(answer['error'])}"
        return f"{name} accepted"

    async def _z2m(self, sub: str, payload: bytes) -> str:
        from ems.model import DeviceInfo, DeviceReading

        seen: list[Any] = []
        unsubscribe = [self.hub.bus.listen(DeviceReading, seen.append), self.hub.bus.listen(DeviceInfo, seen.append)]
        before = dict(self.z2m.malformed)
        try:
            await self.z2m.handle(f"zigbee2mqtt/{sub}", payload, retained=bool(payload[:1] == b" "))
        finally:
            for off in unsubscribe:
                off()
        for item in seen:
            if isinstance(item, DeviceReading):
                for field in ("power_kw", "indoor_c", "cooling_setpoint_c", "heating_setpoint_c"):
                    value = getattr(item, field)
                    if value is not None and (not isinstance(value, float) or not math.isfinite(value)):
                        raise Invariant(f"{field} = {value!r}")
                if item.on is not None and not isinstance(item.on, bool):
                    raise Invariant(f"on = {item.on!r}")
                if item.system_mode not in (None, "off", "cool", "heat", "auto"):
                    raise Invariant(f"mode {item.system_mode!r}")
            elif isinstance(item, DeviceInfo) and str(item.kind) not in ("switch", "thermostat"):
                raise Invariant(f"kind {item.kind}")
        for device_id, port in self.hub.device_ports.items():
            if port is not self.z2m or device_id not in self.z2m.targets:
                raise Invariant(f"port of {device_id}")
        grew = {k for k, v in self.z2m.malformed.items() if v > before.get(k, 0)}
        if grew:
            return f"{sub.split('/')[-1]} rejected: {', '.join(sorted(grew))}"
        return f"{sub.split('/')[-1]} accepted ({len(seen)} events)"

    def seeds(self) -> list[bytes]:
        from tests.integrations.mqtt.zigbee2mqtt_sim import COORDINATOR, PLUG, SENSOR, THERMOSTAT

        out = []
        token = self.token
        for index, name in enumerate(COMMAND_NAMES):
            for body in ({"token": token}, {"token": token, "event_id": 7, "id": "ha-1"},
                         {"token": token, "device_id": self.device_ids[0]},
                         {"token": token, "message_id": 3, "answer": "yes"}, {"token": "ems_nope"}):
                out.append(bytes([index]) + json.dumps({**body, "name": name}).encode())
        base = len(COMMAND_NAMES)
        out.append(bytes([base]) + json.dumps([COORDINATOR, PLUG, THERMOSTAT, SENSOR]).encode())
        out.append(bytes([base + 1]) + b'{"state":"offline"}')
        out.append(bytes([base + 2]) + b'{"state":"OFF","power":0,"energy":1.2}')
        out.append(bytes([base + 3]) + b'{"state":"online"}')
        out.append(bytes([base + 4]) + b'{"occupied_cooling_setpoint":26,"local_temperature":24.5,'
                                        b'"system_mode":"cool"}')
        out.append(bytes([base + 5]) + b"offline")
        return out

    def words(self) -> list[bytes]:
        return [w.encode() for w in ('"token"', '"event_id"', '"device_id"', '"message_id"', '"answer"', '"id"',
                                     '"state"', '"ON"', '"OFF"', '"online"', '"offline"', '"power"',
                                     '"system_mode"', '"occupied_cooling_setpoint"', '"ieee_address"',
                                     '"friendly_name"', '"definition"', '"exposes"', '"features"', '"access"',
                                     '"property"', '"climate"', '"switch"', "4294967296", "-1", "1e400")]

    def close(self) -> None:
        async def stop() -> None:
            await self.bridge._tasks.cancel_all()
            await self.z2m.close()
            await self.hub.control.stop()
            await self.hub._tasks.cancel_all()  # what the DR core left with the hub (its daily retention)
            await self.hub.store.close()

        self.loop.run_until_complete(stop())
        super().close()
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)



TARGETS = {"openadr_event": OpenAdrEvent, "openadr_xml": OpenAdrXml, "mqtt": Mqtt}
