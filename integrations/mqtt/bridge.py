"""The MQTT adapter: the appliance's state out with Home Assistant discovery, customer commands in.

It keeps what each retained topic should say (discovery configs, sensor values) and publishes only
what changed; after a (re)connection, or when Home Assistant says it started (its birth message,
``homeassistant/status`` ``online``), it publishes all of it again, so a broker that lost its
retained messages or a Home Assistant that restarted gets every sensor back. The broker's last will
says ``offline`` on the site's status topic when the appliance drops off; a clean stop says it too.

Commands are authorised by one of the appliance's own API tokens, sent in the payload
(``{"token": "ems_...", ...}``), with the scope the dashboard's route needs (``COMMANDS``): the
broker may be shared (a fleet, an aggregator), so who may publish on a topic says nothing about
who may act for this home. Each use is logged with the token, as an API request is. A command
becomes what the dashboard's button makes (``DemandResponse.set_participation``,
``ems.messages.confirm``): a participation change or an OVERRIDE proposal, never a device command.
The answer goes to ``<command topic>/result``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiomqtt

from ems import billing, messages
from ems.accounts import Accounts, Scope
from ems.bus import Unsubscribe
from ems.errors import NotFound, NotReady, RejectedCommand
from ems.model import (
    DeviceAvailability,
    DeviceCommanded,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    EventPhase,
    EventView,
    IntervalReading,
    MessageCancelled,
    MessageConfirmed,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from ems.tasks import TaskSet
from integrations.mqtt import connect, discovery
from integrations.mqtt.discovery import COMMANDS, OFFLINE, ONLINE, Topics, number, slug
from integrations.mqtt.settings import MqttSettings
from integrations.mqtt.zigbee2mqtt import Zigbee2Mqtt

_LOGGER = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096
MAX_STATE_CHARS = 255  # Home Assistant drops a state longer than this
UINT32 = 0xFFFFFFFF


class CommandRefused(Exception):
    """A command that is not carried out; the message is the answer on the result topic."""


class MqttBridge:
    """One per appliance: the broker connection, the retained state, the command handler."""

    def __init__(self, hub: Any, settings: MqttSettings) -> None:
        self._hub = hub
        self.settings = settings
        self.topics = Topics(settings.topic_prefix, settings.site_id, settings.discovery_prefix)
        self._discovery: dict[str, str] = {}
        self._values: dict[str, str] = {}
        self._pending: dict[str, None] = {}  # topics to (re)publish, in order
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._meters: dict[str, str] = {}  # meter slug -> meter id
        self._meter_currency: dict[str, str] = {}
        self._devices: set[str] = set()
        self._cost_due: set[str] = set()
        self._unsubscribe: list[Unsubscribe] = []
        self._tasks = TaskSet(_LOGGER, "mqtt")
        self._accounts = Accounts(hub.store)
        self._down_logged = False
        self.connections = 0  # how many times the broker accepted us (tests and benchmarks read it)
        self.zigbee2mqtt: Zigbee2Mqtt | None = None  # zigbee2mqtt's devices as load-control targets

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        bus = self._hub.bus
        for event_type, handler in (
            (MeterReading, self._on_reading), (PriceSignal, self._on_meter_event),
            (UtilityMessage, self._on_meter_event), (MessageConfirmed, self._on_meter_event),
            (MessageCancelled, self._on_meter_event), (IntervalReading, self._on_interval),
            (DeviceInfo, self._on_device), (DeviceReading, self._on_device),
            (DeviceCommanded, self._on_commanded), (DeviceAvailability, self._on_availability),
        ):
            self._unsubscribe.append(bus.listen(event_type, handler))
        control = self._hub.control
        if control is not None:
            self._unsubscribe.append(control.load_control.on_change(lambda _trigger: self._refresh_events()))
        for meter_id in sorted(self._hub.state.meters):
            self._refresh_meter(meter_id)
            self._cost_later(meter_id, 0.0)
        if control is not None:
            for status in control.device_statuses():
                self._refresh_device(status.info.device_id)
        self._tasks.spawn(self._supervise(), "mqtt-connection")
        self._tasks.spawn(self._refresh_every(), "mqtt-refresh")
        try:  # the adapter contract: prove the connection, but a broker that is down does not stop the home
            await asyncio.wait_for(self._connected.wait(), self.settings.connect_timeout_s)
        except TimeoutError:
            _LOGGER.warning("MQTT broker %s:%d not reachable yet; retrying in the background",
                            self.settings.host, self.settings.port)
        if self.settings.zigbee2mqtt.enabled:
            self.zigbee2mqtt = Zigbee2Mqtt(self._hub, self.settings)
            await self.zigbee2mqtt.start()

    async def close(self) -> None:
        if self.zigbee2mqtt is not None:
            await self.zigbee2mqtt.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        client = self._client
        if client is not None and self._connected.is_set():
            try:  # a clean stop says offline itself (the last will is for a drop)
                await asyncio.wait_for(client.publish(self.topics.status, OFFLINE, qos=1, retain=True), 2.0)
            except (aiomqtt.MqttError, TimeoutError):
                pass
        await self._tasks.cancel_all()

    # -- the connection --------------------------------------------------------------------

    async def _supervise(self) -> None:
        s = self.settings
        assert s.host is not None
        delay = s.first_retry_s
        while True:
            try:
                async with connect.client(
                    s, f"ems-{slug(s.site_id)}", aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
                ) as client:
                    await self._session(client)
            except (aiomqtt.MqttError, OSError) as err:  # OSError: a TLS failure, a refused socket
                self._client = None
                self._connected.clear()
                if not self._down_logged:
                    _LOGGER.warning("MQTT broker %s:%d: %s; retrying", s.host, s.port, err)
                    self._down_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.max_retry_s)
                continue
            delay = s.first_retry_s

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        await client.subscribe(self.topics.birth, qos=1)
        await client.subscribe(self.topics.commands, qos=1)
        self._client = client
        self.connections += 1
        if self._down_logged:
            _LOGGER.info("MQTT broker %s:%d reachable again", self.settings.host, self.settings.port)
            self._down_logged = False
        self._republish()
        self._connected.set()
        publisher = asyncio.get_running_loop().create_task(self._publish_loop(client), name="mqtt-publish")
        try:
            async for message in client.messages:
                topic = str(message.topic)
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                if topic == self.topics.birth:
                    if payload.strip() == ONLINE.encode():
                        _LOGGER.info("Home Assistant started: publishing the discovery again")
                        self._republish()
                    continue
                self._tasks.spawn(self._command(client, topic, payload), "mqtt-command")
                if publisher.done():
                    break
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            self._client = None
            self._connected.clear()
        if not publisher.cancelled() and (err := publisher.exception()) is not None:
            raise aiomqtt.MqttError(str(err))

    def _republish(self) -> None:
        """Everything again, the discovery first (Home Assistant creates the sensor, then reads it)."""
        self._pending = {**dict.fromkeys(self._discovery), **dict.fromkeys(self._values), **self._pending}
        self._wake.set()

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                topic = next(iter(self._pending))
                payload = self._discovery.get(topic, self._values.get(topic))
                if payload is None:
                    del self._pending[topic]
                    continue
                await client.publish(topic, payload, qos=1, retain=True)
                if self._discovery.get(topic, self._values.get(topic)) == payload:
                    self._pending.pop(topic, None)  # unless it changed again meanwhile

    def _set(self, topic: str, payload: str | None, *, config: bool = False) -> None:
        """What a retained topic should say (None: nothing known, left as it is)."""
        if payload is None:
            return
        table = self._discovery if config else self._values
        if table.get(topic) == payload:
            return
        table[topic] = payload
        self._pending[topic] = None
        self._wake.set()

    # -- state out -------------------------------------------------------------------------

    def _currency(self, meter_id: str) -> str:
        tariff = self._hub.config.tariff
        plan = tariff.active_plan if tariff is not None else None
        if plan is not None:
            return str(plan.currency)
        price = self._hub.state.active_price(meter_id, self._hub.clock())
        return price.currency if price is not None and price.currency else "USD"

    def _ensure_meter(self, meter_id: str) -> None:
        currency = self._currency(meter_id)
        if self._meter_currency.get(meter_id) == currency:
            return
        self._meters[slug(meter_id)] = meter_id
        self._meter_currency[meter_id] = currency
        configs = discovery.meter_configs(self.topics, meter_id, self._hub.config.site.name, currency)
        for topic, payload in configs.items():
            self._set(topic, payload, config=True)

    def _on_reading(self, reading: MeterReading) -> None:
        meter_id = reading.meter_id
        if meter_id not in self._meter_currency:
            self._refresh_meter(meter_id)
        t = self.topics
        if reading.demand_kw is not None:
            self._set(t.meter(meter_id, "demand_kw"), number(reading.demand_kw))
        if reading.summation_delivered_kwh is not None:
            self._set(t.meter(meter_id, "energy_delivered_kwh"), number(reading.summation_delivered_kwh))
        if reading.summation_received_kwh is not None:
            self._set(t.meter(meter_id, "energy_received_kwh"), number(reading.summation_received_kwh))

    def _on_meter_event(self, event: Any) -> None:
        self._refresh_meter(event.meter_id)

    def _refresh_meter(self, meter_id: str) -> None:
        """Price, tier, the event and the latest message as they stand now."""
        self._ensure_meter(meter_id)
        hub, t = self._hub, self.topics
        now = hub.clock()
        meter = hub.state.meters.get(meter_id)
        if meter is not None:
            for name, key in (("demand_kw", "demand_kw"), ("summation_delivered_kwh", "energy_delivered_kwh"),
                              ("summation_received_kwh", "energy_received_kwh")):
                value = meter.value(name)
                if value is not None:
                    self._set(t.meter(meter_id, key), number(value))
        price = hub.state.active_price(meter_id, now)
        if price is not None:
            self._set(t.meter(meter_id, "price"), number(price.price_per_kwh, 5))
            self._set(t.meter(meter_id, "tier"), str(price.tier))
        self._refresh_event(meter_id)
        latest = next((m for m in hub.state.recent_messages(now)
                       if m.message.meter_id == meter_id and m.cancelled_at is None), None)
        if latest is not None:
            msg = latest.message
            self._set(t.meter(meter_id, "message"), (msg.text or "")[:MAX_STATE_CHARS])
            self._set(t.meter(meter_id, "message/attributes"), json.dumps({
                "message_id": msg.message_id, "importance": msg.importance.name.lower(),
                "received_at": msg.received_at.isoformat(), "confirmation_required": msg.confirmation_required,
                "confirmed": latest.confirmed_at is not None, "origin": str(msg.origin)}, sort_keys=True))

    def _refresh_events(self) -> None:
        for meter_id in list(self._meter_currency):
            self._refresh_event(meter_id)

    def _refresh_event(self, meter_id: str) -> None:
        control = self._hub.control
        if control is None:
            return
        view = current_event(control.events(), meter_id)
        t = self.topics
        if view is None:
            self._set(t.meter(meter_id, "dr_event"), "none")
            self._set(t.meter(meter_id, "dr_event/attributes"), "{}")
            return
        state = "opted_out" if view.opted_out else str(view.phase)
        names = control.device_names()
        self._set(t.meter(meter_id, "dr_event"), state)
        self._set(t.meter(meter_id, "dr_event/attributes"), json.dumps({
            "event_id": view.event.issuer_event_id, "start": view.effective_start.isoformat(),
            "end": view.effective_end.isoformat(), "criticality": int(view.event.criticality),
            "opted_out": view.opted_out,
            "devices_taken_out": sorted(names.get(d, d) for d in view.excluded_devices)}, sort_keys=True))

    def _on_interval(self, reading: IntervalReading) -> None:
        self._cost_later(reading.meter_id, 1.0)

    def _cost_later(self, meter_id: str, wait_s: float) -> None:
        tariff = self._hub.config.tariff
        if tariff is None or tariff.active_plan is None or meter_id in self._cost_due:
            return
        self._cost_due.add(meter_id)
        self._tasks.spawn(self._cost(meter_id, wait_s), "mqtt-cost")

    async def _cost(self, meter_id: str, wait_s: float) -> None:
        try:
            await asyncio.sleep(wait_s)  # a burst of intervals lands first
            try:
                cost = await billing.meter_cost(self._hub, meter_id)
            except (NotFound, NotReady):
                return
            self._ensure_meter(meter_id)
            t = self.topics
            self._set(t.meter(meter_id, "cycle_cost"), number(cost.report.cycle.total_cost, 2))
            if cost.projection is not None:
                self._set(t.meter(meter_id, "projected_bill"), number(cost.projection.total_cost, 2))
            await asyncio.sleep(self.settings.cost_min_gap_s)
        finally:
            self._cost_due.discard(meter_id)

    async def _refresh_every(self) -> None:
        """Prices and events change with time too (a TOU period, an event starting)."""
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            for meter_id in list(self._meter_currency):
                self._refresh_meter(meter_id)

    def _on_device(self, event: DeviceInfo | DeviceReading) -> None:
        self._refresh_device(event.device_id)

    def _on_commanded(self, event: DeviceCommanded) -> None:
        self._refresh_device(event.command.device_id)

    def _on_availability(self, event: DeviceAvailability) -> None:
        self._set(self.topics.device_availability(event.device_id), ONLINE if event.available else OFFLINE)

    def _refresh_device(self, device_id: str) -> None:
        control = self._hub.control
        if control is None:
            return
        try:
            status = control.device(device_id)
        except NotFound:
            return
        info, reading, t = status.info, status.reading, self.topics
        if device_id not in self._devices:
            self._devices.add(device_id)
            keys = ["state", "power_kw"]
            if info.kind is DeviceKind.THERMOSTAT:
                keys.append("indoor_c")
            if info.kind is DeviceKind.BATTERY:
                keys.append("soc_pct")
            for topic, payload in discovery.device_configs(t, device_id, info.name, str(info.kind), info.model,
                                                           tuple(keys)).items():
                self._set(topic, payload, config=True)
        self._set(t.device_availability(device_id), ONLINE if status.available else OFFLINE)
        self._set(t.device(device_id, "state"), device_state(status))
        held = status.controlled
        winner = status.decision.winner if status.decision is not None else None
        self._set(t.device(device_id, "state/attributes"), json.dumps({
            "device_id": device_id, "kind": str(info.kind), "controlled": held is not None,
            "held_by": None if winner is None or held is None else winner.source.name.lower(),
            "reason": None if winner is None or held is None else winner.reason.english(),
            "taken_in_hand_by_customer": status.override is not None,
            "cooling_setpoint_c": reading.cooling_setpoint_c if reading else None,
            "heating_setpoint_c": reading.heating_setpoint_c if reading else None,
        }, sort_keys=True))
        if reading is not None:
            if reading.power_kw is not None:
                self._set(t.device(device_id, "power_kw"), number(reading.power_kw))
            if reading.indoor_c is not None:
                self._set(t.device(device_id, "indoor_c"), number(reading.indoor_c, 1))
            if reading.soc_pct is not None:
                self._set(t.device(device_id, "soc_pct"), number(reading.soc_pct, 0))

    # -- commands in -----------------------------------------------------------------------

    async def _command(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse_command(topic)
        if parsed is None or parsed[1] == "result" or topic.endswith("/result"):
            return
        meter_slug, name = parsed
        body: dict[str, Any] = {}
        try:
            body = parse_body(payload)
            answer = await self._carry_out(topic, meter_slug, name, body)
            result: dict[str, Any] = {"ok": True, **answer}
        except CommandRefused as err:
            _LOGGER.info("MQTT command %s refused: %s", name, err)
            result = {"ok": False, "error": str(err)}
        except RejectedCommand as err:
            result = {"ok": False, "error": str(err)}
        except NotReady as err:
            result = {"ok": False, "error": f"not ready: {err}"}
        request_id = body.get("id")
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            result["id"] = request_id
        try:
            await client.publish(f"{topic}/result", json.dumps(result, sort_keys=True), qos=1)
        except aiomqtt.MqttError:
            pass  # the broker went away; the command itself was carried out (or not) all the same

    async def _carry_out(self, topic: str, meter_slug: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name not in COMMANDS:
            raise CommandRefused(f"unknown command {name!r} (known: {', '.join(COMMANDS)})")
        secret = body.get("token")
        if not isinstance(secret, str) or not secret:
            raise CommandRefused('send one of the appliance\'s API tokens as "token"')
        token = await self._accounts.authenticate_token(secret)
        if token is None:
            raise CommandRefused("the token is not valid (revoked, or never issued here)")
        needed = Scope(COMMANDS[name])
        allowed = needed in token.effective_scopes
        use = self._accounts.record_token_use(token.id, "MQTT", topic, 200 if allowed else 403, self._hub.clock())
        if not allowed:
            await use
            raise CommandRefused(f"the token may not do this (it needs the {needed.value} scope)")
        self._tasks.spawn(use, "mqtt-token-use")  # logged beside the command, not before it
        meter_id = self._meters.get(meter_slug)
        if meter_id is None:
            raise CommandRefused(f"no meter {meter_slug!r} here")
        by = token.user.username
        if name == "confirm":
            message_id = _uint32(body, "message_id", required=True)
            answer = body.get("answer")
            await messages.confirm(self._hub, meter_id, message_id, answer)
            return {"message_id": message_id}
        control = self._hub.control
        if control is None:
            raise NotReady("demand response is not running")
        event_id = _uint32(body, "event_id", required=False)
        if event_id is None:
            view = current_event(control.events(), meter_id)
            if view is None:
                raise CommandRefused("there is no event now: name one with \"event_id\"")
            event_id = view.event.issuer_event_id
        control.event(meter_id, event_id)  # NotFound for an event not heard here
        device_id: str | None = None
        if name in ("take_out", "put_back"):
            device_id = self._device_id(body.get("device_id"))
        opted_out = name in ("opt_out", "take_out")
        await control.set_participation(meter_id, event_id, opted_out=opted_out, device_id=device_id, by=by)
        _LOGGER.info("[%s] %s %s event %d over MQTT%s", meter_id, by, name, event_id,
                     f" for device {device_id}" if device_id else "")
        self._refresh_event(meter_id)
        return {"event_id": event_id, **({"device_id": device_id} if device_id else {})}

    def _device_id(self, given: Any) -> str:
        control = self._hub.control
        if not isinstance(given, str) or not given:
            raise CommandRefused('name the device with "device_id"')
        known = control.device_names() if control is not None else {}
        for device_id in known:
            if given in (device_id, slug(device_id)):
                return device_id
        raise CommandRefused(f"no device {given!r} here")


def parse_body(payload: bytes) -> dict[str, Any]:
    """A command's JSON object (at most MAX_COMMAND_BYTES)."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"the command is over {MAX_COMMAND_BYTES} bytes")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CommandRefused('the command must be JSON such as {"token": "...", "event_id": 1}') from None
    if not isinstance(body, dict):
        raise CommandRefused('the command must be a JSON object such as {"token": "..."}')
    return body


def _uint32(body: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32:
        raise CommandRefused(f"{key} must be a whole number from 0 to {UINT32}")
    return value


def current_event(views: tuple[EventView, ...], meter_id: str) -> EventView | None:
    """The meter's event that matters now: the running one, else the next scheduled one."""
    mine = [v for v in views if v.event.meter_id == meter_id and v.phase is not EventPhase.ENDED]
    active = [v for v in mine if v.phase is EventPhase.ACTIVE]
    if active:
        return active[0]
    return min(mine, key=lambda v: v.effective_start, default=None)


def device_state(status: Any) -> str:
    """A device's state as one word: its mode (a thermostat), on or off, or unknown."""
    reading = status.reading
    if not status.available:
        return "unavailable"
    if reading is None:
        return "unknown"
    if status.info.kind is DeviceKind.THERMOSTAT and reading.system_mode:
        return str(reading.system_mode)
    if reading.on is not None:
        return "on" if reading.on else "off"
    return "unknown"
