"""The simulated HAN: a SmartConnect meter (ESI) driven by a YAML scenario, and the home's devices.

``SimulatedHan`` hosts the meter on a virtual HAN that the appliance's virtual radio joins
over loopback TCP (the meter is that network's coordinator and trust center: it admits the
appliances registered with it, `TrustCenter`, and then writes the utility's configuration into
them, C6 3.1 steps 14-17), and the home's own devices on a second virtual HAN (``home_port``), whose
coordinator is the appliance. It ticks the home's devices and the meter's registers every
report interval (the devices' load is part of the meter's demand), publishes a new price when
the period or block changes, and sends the scenario's messages, DR events, cancellations and
price changes at their offsets from the start.

It reads and waits only through its clock (``ems.clock``; real time by default): the report
interval and the script's offsets are the clock's seconds, so on a ``SimulatedClock`` running N
times faster the household's day, the rate's periods and the script run N times faster too (the
radio's own timing, attribute reports and retries, stays real). The appliance given the same clock
(``Hub(..., clock=...)``) lives in the same simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import zigpy.types as t

from ems.clock import Clock, as_clock
from ems.tasks import TaskSet
from integrations.simulator.home import SimulatedHome
from integrations.simulator.home_devices import SimThermostat
from integrations.simulator.loads import HomeLoadModel
from integrations.simulator.meter import (
    SentEvent,
    SentMessage,
    SimulatedMeter,
    event_fields,
    message_control,
)
from integrations.simulator.rate import PricePoint
from integrations.simulator.scenario import Scenario, exact_price
from integrations.zigbee.han import LinkFaults, VirtualHan
from integrations.zigbee.install_code import InstallCode
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc
from integrations.zigbee.trust_center import DEFAULT_DEVICE_TYPE, Registration, TrustCenter
from integrations.zigbee.virtual_node import NodeSendError

_LOGGER = logging.getLogger(__name__)


def trust_center_of(meter: dict[str, Any], registrations: Iterable[Registration] = ()) -> TrustCenter:
    """The meter's trust center: the scenario's registrations (and any others), its network key."""
    key = bytes.fromhex(meter["network_key"]) if meter.get("network_key") else secrets.token_bytes(16)
    listed = [Registration(t.EUI64.convert(r["ieee"]), InstallCode.parse(r["install_code"]), r["device_type"])
              for r in meter["registered"]]
    return TrustCenter(t.EUI64.convert(meter["ieee"]), network_key=key, registrations=[*listed, *registrations],
                       approved_device_types=tuple(meter["approved_device_types"]))


class SimulatedHan:
    """The virtual HAN with the simulated meter on it, run by one scenario."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        port: int = 0,
        pcap_path: str | os.PathLike[str] | None = None,
        clock: Clock | Callable[[], datetime] | None = None,
        home_port: int = 0,
        home_pcap_path: str | os.PathLike[str] | None = None,
        registrations: Iterable[Registration] = (),
    ) -> None:
        """``registrations`` are registered with the meter on top of its scenario's (``--register``)."""
        self.scenario = scenario
        self.clock: Clock = as_clock(clock)
        faults = scenario.faults
        self.trust_center = trust_center_of(scenario.meter, registrations)
        meter = scenario.meter
        self.han = VirtualHan(port=port, pcap_path=pcap_path, faults=LinkFaults(
            drop=faults["drop"], duplicate=faults["duplicate"], delay=faults["delay"],
            delay_s=faults["delay_s"], reorder=faults["reorder"], seed=faults["seed"]),
            trust_center=self.trust_center,
            network=(meter["pan_id"], t.ExtendedPanId(t.EUI64.convert(meter["ieee"])), meter["channel"]))
        self.han.clock = self.clock
        self.han.on_lost = self._lost_on_air
        self.meter = SimulatedMeter(scenario, self.clock)
        self.home = SimulatedHome(scenario.home, self.meter.household, self.clock,
                                  port=home_port, pcap_path=home_pcap_path)
        self.home.on_change = self._home_changed
        # With a simulated thermostat, the HVAC is its load, not the household's own term.
        self.meter.household_hvac = not self.home.has_thermostat
        # The meter's backfilled day: the same devices, run by themselves over the past (as the
        # demo's seeded history is), so yesterday's profile leads into today's live load.
        self.meter.past_load = lambda start, end, step: HomeLoadModel(scenario.home, self.meter.household).series(
            start, end, step)
        thermostats = [d for d in self.home.devices if isinstance(d, SimThermostat)]
        if thermostats:
            # What a report says is applied is checked against what the thermostat keeps.
            thermostat = thermostats[0]
            self.meter.checker.set_point_probe = lambda: thermostat.setpoints_centi
        self.started_at: datetime | None = None
        self._tasks = TaskSet(_LOGGER, "simulator")
        self._message_ids = 1
        self.script_done = asyncio.Event()  # set once every scripted frame has been sent

    def capture_keys(self) -> list[tuple[bytes, str]]:
        """The keys a sniffer needs to read this meter's network (tests, Wireshark): the network
        key and every registered device's link key. The simulator's, never the appliance's, to give."""
        keys = [(self.trust_center.network_key, "network key")]
        for ieee in self.trust_center.registered():
            registration = self.trust_center.registration(ieee)
            assert registration is not None
            keys.append((registration.link_key, f"link key {ieee}"))
        return keys

    @property
    def auto_register(self) -> bool:
        """Whether the appliance it runs with is registered with the meter from the start."""
        return bool(self.scenario.meter["register_appliance"])

    def register_appliance(self, ieee: str, install_code: bytes, device_type: str = DEFAULT_DEVICE_TYPE) -> None:
        """Register an appliance with the meter, as the utility does with what the customer gave it."""
        self.trust_center.register(Registration(t.EUI64.convert(ieee), InstallCode.parse(install_code.hex()), device_type))

    @property
    def port(self) -> int:
        return self.han.port

    @property
    def home_port(self) -> int:
        """The port of the home's own network (the appliance's home radio connects here)."""
        return self.home.port

    @property
    def node(self) -> Any:
        """The meter's VirtualNode: its frame log shows everything the EMS sent."""
        return self.meter.node

    async def start(self) -> None:
        self.started_at = self.clock()
        self.tick(self.started_at)
        self.meter.price_changed(self.started_at)
        self.han.add_node(self.meter.node)
        await self.han.start()
        try:
            await self.home.start()
        except BaseException:
            await self.han.stop()
            raise
        self._spawn(self._tick_forever(), "simulator-tick")
        self._spawn(self._run_script(), "simulator-script")
        if self.scenario.meter["configuration"]["send"]:
            self._spawn(self._configure_on_join(), "simulator-configuration")
        _LOGGER.info("Simulated meter %s ready on port %d (scenario %s)",
                     self.meter.node.ieee, self.port, self.scenario.name)

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self.meter.cancel_pending()
        await self.home.stop()
        await self.han.stop()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.spawn(coro, name)

    # -- the meter's own rhythm ---------------------------------------------------------------

    async def _tick_forever(self) -> None:
        interval = self.scenario.meter["report_interval"].total_seconds()
        while True:
            await self.clock.sleep(interval)
            now = self.clock()
            self.tick(now)
            if self.meter.price_changed(now):
                await self._send(self.meter.send_price(now))

    def tick(self, now: datetime) -> None:
        """Move the home's devices and then the meter to ``now`` (tests call it directly)."""
        self.home.tick(now)
        self.meter.extra_kw = self.home.load_kw
        self.meter.tick(now)
        self.meter.checker.sample()

    def _home_changed(self) -> None:
        """A device switched or was shed: the meter shows the new demand at once."""
        self.meter.extra_kw = self.home.load_kw
        self.meter.tick(self.clock())
        self.meter.checker.sample()

    async def _send(self, coro: Any) -> None:
        """Send to the EMS; a frame for an EMS that is not connected is simply lost."""
        try:
            await coro
        except NodeSendError as err:
            _LOGGER.debug("Simulator frame not delivered: %s", err)

    # -- the utility's script ----------------------------------------------------------------

    async def _run_script(self) -> None:
        assert self.started_at is not None
        steps: list[tuple[timedelta, Callable[[], Any]]] = []
        for spec in self.scenario.messages:
            steps.append((spec["at"], lambda spec=spec: self.send_message(spec)))
        for spec in self.scenario.events:
            steps.append((spec["at"], lambda spec=spec: self.send_event(spec)))
        for spec in self.scenario.cancellations:
            steps.append((spec["at"], lambda spec=spec: self.send_cancellation(spec)))
        for spec in self.scenario.price_changes:
            steps.append((spec["at"], lambda spec=spec: self.send_price_change(spec)))
        for spec in self.scenario.raw_frames:
            steps.append((spec["at"], lambda spec=spec: self.send_raw_frame(spec)))
        for spell in self.scenario.faults["freeze"]:
            self._spawn(self._spell(spell, self.freeze), "simulator-freeze")
        for spell in self.scenario.faults["away"]:
            self._spawn(self._spell(spell, self.away), "simulator-away")
        for offset, action in sorted(steps, key=lambda s: s[0]):
            delay = (self.started_at + offset - self.clock()).total_seconds()
            if delay > 0:
                await self.clock.sleep(delay)
            await self._wait_for_ems()
            await self._send(action())
        self.script_done.set()

    # -- link faults (the scenario's ``faults``) -----------------------------------------------

    async def _spell(self, spell: dict[str, Any], fault: Callable[[float], Any]) -> None:
        assert self.started_at is not None
        delay = (self.started_at + spell["at"] - self.clock()).total_seconds()
        if delay > 0:
            await self.clock.sleep(delay)
        await fault(spell["for"].total_seconds())

    def _lost_on_air(self, frame: Any) -> None:
        """A link fault ate a frame: if the meter sent it, the EMS never heard it and owes it nothing."""
        if frame.nwk_src == self.meter.node.nwk:
            self.meter.checker.lost_on_air(frame.cluster_id, frame.payload)

    async def freeze(self, seconds: float) -> None:
        """The meter hangs for ``seconds`` of the clock: the connection stays open, nothing is answered."""
        self.han.freeze()
        try:
            await self.clock.sleep(seconds)
        finally:
            self.han.unfreeze()

    async def away(self, seconds: float) -> None:
        """The meter is gone for ``seconds`` of the clock (its HAN stops listening), then comes back."""
        self.han.counters["fault_away"] += 1
        await self.han.stop()
        try:
            await self.clock.sleep(seconds)
        finally:
            await self.han.start()

    async def _wait_for_ems(self) -> None:
        """Hold the script while no EMS is connected, and until it has spoken SE to the meter once.

        A client that is still joining (its radio connected, its meter session not yet made)
        cannot answer; a real ESI publishes to a client after it has bound and asked (SE §6.5),
        and the strict meter would count the lost answers against it.
        """
        while not self.han.connected or not self.meter.client_heard.is_set():
            with contextlib.suppress(TimeoutError):
                if not self.han.connected:
                    await self.han.wait_connected(timeout_s=60)
                else:
                    async with asyncio.timeout(60):
                        await self.meter.client_heard.wait()

    # -- the utility's configuration of a joined appliance (C6 3.1 steps 14-17) ----------------

    async def _configure_on_join(self) -> None:
        """Each time the appliance joins and has spoken SE to the meter: its configuration, then the test message."""
        while True:
            while not self.han.connected:
                with contextlib.suppress(TimeoutError):
                    await self.han.wait_connected(timeout_s=60)
            self.meter.joined_heard.clear()
            while not self.meter.joined_heard.is_set() and self.han.connected:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        await self.meter.joined_heard.wait()
            if self.han.connected:
                try:
                    await self.meter.send_configuration()
                except NodeSendError as err:
                    _LOGGER.info("Simulated meter: the configuration did not go out: %s", err)
            while self.han.connected:
                with contextlib.suppress(TimeoutError):
                    await self.han.wait_connected(False, timeout_s=60)

    async def send_message(self, spec: dict[str, Any]) -> None:
        message_id = spec.get("id") or self._message_ids
        self._message_ids = max(self._message_ids, message_id) + 1
        now = self.clock()
        start, start_time = now, None
        if spec.get("start") == "now":
            start_time = 0  # §1.4: StartTime 0 is "now"
        elif spec.get("starts_in") is not None:
            start = now + spec["starts_in"]
        message = SentMessage(
            message_id=message_id,
            control=message_control(spec["importance"], spec["confirm"], public=spec["kind"] == "public"),
            start=start,
            duration_min=spec["duration_min"],
            text=spec["text"],
            start_time=start_time,
            disable_default_response=spec["disable_default_response"],
        )
        await self.meter.send_message(message)

    async def send_event(self, spec: dict[str, Any]) -> None:
        now = self.clock()
        start, start_time = now, None
        if spec.get("start") == "now":
            start_time = 0  # §1.4: "now"
        elif spec.get("start") == "invalid":
            start_time = 0xFFFFFFFF  # §2.12 item 3: to be rejected with 0xFE
        elif spec.get("started_ago") is not None:
            start = now - spec["started_ago"]
        elif spec.get("starts_in") is not None:
            start = now + spec["starts_in"]
        event = SentEvent(event_fields(spec, start, start_time), start, spec["duration_min"],
                          spec["disable_default_response"])
        await self.meter.send_event(event)

    async def send_cancellation(self, spec: dict[str, Any]) -> None:
        control = spec.get("cancel_control")
        if control is None:
            control = 0x01 if spec["randomize_end"] else 0x00
        ddr = spec["disable_default_response"]
        if spec.get("id") is None:
            await self.meter.send_raw(Drlc, "cancel_all_load_control_events", cancel_control=control,
                                      disable_default_response=ddr)
            return
        effective = spec["effective_in"]
        if effective == "invalid":
            effective_time = 0xFFFFFFFF
        elif effective == "now" or effective == timedelta(0):
            effective_time = 0  # §2.7: "now"
        else:
            effective_time = codec.datetime_to_utc_time(self.clock() + effective)
        await self.meter.send_raw(
            Drlc,
            "cancel_load_control_event",
            disable_default_response=ddr,
            issuer_event_id=spec["id"],
            device_class=spec["device_class"],
            utility_enrollment_group=spec["enrollment_group"],
            cancel_control=control,
            effective_time=effective_time,
        )

    async def send_price_change(self, spec: dict[str, Any]) -> None:
        """A PublishPrice exactly as the scenario writes it (every optional field, no rounding)."""
        now = self.clock()
        meter = self.meter
        raw, digits = exact_price(spec["price"], spec.get("trailing_digits"))
        start = now
        start_time = 0
        if spec.get("starts_in") is not None:
            start = now + spec["starts_in"]
            start_time = codec.datetime_to_utc_time(start)
        until = start + timedelta(minutes=spec["duration_min"])
        point = PricePoint(float(spec["price"]), spec["tier"], spec["label"], 0, "event", until)
        if spec.get("issuer_event_id") is not None:
            meter.price_event_id = spec["issuer_event_id"]
        else:
            meter.price_event_id += 1
        fields = meter.price_fields(point, now)
        fields.update(
            issuer_event_id=meter.price_event_id,
            price_trailing_digit_and_price_tier=(digits << 4) | (spec["tier"] & 0x0F),
            start_time=start_time,
            duration_in_minutes=spec["duration_min"],
            price=raw,
        )
        optional = {
            "provider_id": spec.get("provider_id"),
            "price_ratio": spec.get("price_ratio"),
            "generation_price": None if spec.get("generation_price") is None
            else exact_price(spec["generation_price"], digits)[0],
            "generation_price_ratio": spec.get("generation_price_ratio"),
            "alternate_cost_delivered": spec.get("alternate_cost_delivered"),
            "alternate_cost_unit": spec.get("alternate_cost_unit"),
            "alternate_cost_trailing_digit": spec.get("alternate_cost_trailing_digit"),
            "number_of_block_thresholds": spec.get("number_of_block_thresholds"),
            "price_control": spec.get("price_control"),
        }
        fields.update({key: value for key, value in optional.items() if value is not None})
        if spec.get("starts_in") is None or spec["starts_in"] <= timedelta(0):
            # In force now: what GetCurrentPrice answers until it ends, exactly as sent.
            meter.price_override = (point, until)
            meter.price_override_fields = dict(fields)
            meter.price = point
        await meter.send_price(now, disable_default_response=spec["disable_default_response"], fields=fields)

    async def send_raw_frame(self, spec: dict[str, Any]) -> None:
        """A scenario's raw frame, as written; ``disable_default_response`` patches bit 4."""
        payload = bytearray(spec["hex"])
        ddr = spec.get("disable_default_response")
        if ddr is not None:
            payload[0] = (payload[0] | 0x10) if ddr else (payload[0] & ~0x10)
        self.meter.send_raw_frame(spec["cluster"], bytes(payload))

