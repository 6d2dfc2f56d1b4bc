"""The only part that talks to devices: turns decisions into commands, confirms, retries, restores.

Before it first changes a device it writes down how the device was (``controlled_devices``,
written before the command is sent, so a crash or restart still restores it). It sends a
command only when what a device should do changes, to all devices at once. When no decision
holds a device any more it puts the device back as it was, retrying a device that does not
answer until it does. It decides nothing: a change made by hand on a controlled device is seen
by the cycle in the snapshot (``ems.dr.overrides``) and comes back as the arbiter's HOLD, on
which the dispatcher lets the device go as the customer set it (nothing to put back). What it
did and how each device was go into the next snapshot through ``record()``.

An event relayed to a load controller's own DRLC client is written down too (``relayed_events``,
before the relay is sent): after a restart a cancel, an opt-out or the device taken out of the
event still sends the device the cancel, instead of leaving it to shed until the event's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.dr.arbiter import Decision, source_of
from ems.dr.ports import DeviceDirectory, DrHub, KnownDevice
from ems.errors import DeviceError, StoreError
from ems.local_text import N_
from ems.model import (
    CommandAction,
    ControlledDevice,
    DeviceCommand,
    DeviceCommanded,
    DeviceKind,
    DeviceReading,
    LoadControlEvent,
    LoadHistory,
    Proposal,
    ProposalAction,
    Text,
    utcnow,
)
from ems.outbox import decode, encode
from ems.ports import DevicePort
from ems.store import tables
from ems.store.writer import insert

_LOGGER = logging.getLogger(__name__)

RETRY_AFTER = timedelta(seconds=30)
PUT_BACK_EACH_S = 3.0  # on stop: how long one device may take to answer its restore
PUT_BACK_TOTAL_S = 5.0  # on stop: how long putting every device back may take in all


@dataclass(frozen=True, slots=True)
class Target:
    """What one device should be doing, as sent (compared to avoid sending it again)."""

    on: bool | None = None
    cooling_c: float | None = None
    heating_c: float | None = None
    relay_event: tuple[str, int] | None = None


Send = Callable[[], Awaitable[None]]  # one device's command, through its port


@runtime_checkable
class FanOutPort(Protocol):
    """A port that switches many of its devices at once (a Zigbee groupcast where it fits).

    Returns, per device, None once the device confirmed, or the error that device raised.
    """

    async def switch_all(self, device_ids: Iterable[str], on: bool) -> Mapping[str, Exception | None]: ...


@dataclass(slots=True)
class Controlled:
    """A device the EMS holds: how it was, what it was told, by whom."""

    original: dict[str, Any]
    since: datetime
    source: str
    target: Target | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    failed_for: Target | None = None
    relayed: LoadControlEvent | None = None
    proposal: Proposal | None = None


@dataclass(slots=True)
class _Step:
    """One device's command, prepared: what goes, why, and how it is sent."""

    device_id: str
    winner: Proposal | None
    target: Target | None
    held: Controlled
    name: str
    reason: Text
    command: DeviceCommand
    port: DevicePort | None
    send: Send | None


PUT_BACK = N_("Put back as it was before {source}")  # a restore's reason, as a catalog msgid
# Where a logged command's detail (device_commands.detail) keeps its reason's msgid and values.
REASON_TEMPLATE, REASON_PARAMS = "reason_template", "reason_params"


class Dispatcher:
    """Sends what the arbiter decided through each device's port, and restores what it changed."""

    def __init__(
        self,
        hub: DrHub,
        registry: DeviceDirectory,
        *,
        clock: Callable[[], datetime] = utcnow,
        duty_period: timedelta = timedelta(minutes=30),
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._clock = clock
        self._duty_period = duty_period
        self.controlled: dict[str, Controlled] = {}
        self.history: dict[str, LoadHistory] = {}
        self.decisions: dict[str, Decision] = {}
        self._events: Mapping[tuple[str, int], LoadControlEvent] = {}
        self._lock = asyncio.Lock()
        # record()'s frozen copies, made again only for what changed since they were made
        self._frozen: dict[str, tuple[tuple[Any, ...], tuple[str, tuple[str, int] | None], ControlledDevice]] = {}
        self._record: Mapping[str, ControlledDevice] | None = None
        self._history_seen: dict[str, LoadHistory] | None = None
        self._history_record: Mapping[str, LoadHistory] | None = None

    async def start(self) -> None:
        for device_id, original, since, source in await self._hub.store.read("read controlled devices", _controlled):
            self.controlled[device_id] = Controlled(original, since, source)
        for device_id, event in await self._hub.store.read("read relayed events", _relayed):
            if device_id in self.controlled:  # the device's own DRLC client holds it: a cancel must reach it
                self.controlled[device_id].relayed = event
        if self.controlled:
            _LOGGER.info("%d device(s) were left controlled at the last stop; restoring when nothing holds them",
                         len(self.controlled))

    def record(self) -> tuple[Mapping[str, ControlledDevice], Mapping[str, LoadHistory]]:
        """What it holds and how each device was, and what it did to loads lately: frozen copies.

        Read several times a cycle (the snapshot, the achievements, the load control's reports) and by
        the pages: each device's frozen record is made again only when its entry changed (a new entry,
        another target, send time or proposal), and the same mappings are handed out while nothing
        changed, so a cycle over hundreds of devices does not rebuild them all three times.
        """
        frozen = self._frozen
        fresh: dict[str, ControlledDevice] = {}
        changed = len(frozen) != len(self.controlled)
        for device_id, c in self.controlled.items():
            p, target, sent_at = c.proposal, c.target, c.sent_at
            kept = frozen.get(device_id)
            if kept is not None:
                k = kept[0]
                if k[0] is c and k[1] is target and k[2] is sent_at and k[3] is p:
                    fresh[device_id] = kept[2]
                    continue
            key = (c, target, sent_at, p)
            # The cycle hands it a new Proposal each time: what the record shows of it is compared.
            sent_source = source_of(p) if p is not None else ""
            sent_event = (p.meter_id, p.issuer_event_id) if p is not None and p.meter_id is not None \
                and p.issuer_event_id is not None else None
            shown = (sent_source, sent_event)
            if kept is not None and kept[0][0] is c and kept[0][1:3] == key[1:3] and kept[1] == shown:
                frozen[device_id] = (key, shown, kept[2])
                fresh[device_id] = kept[2]
                continue
            changed = True
            sent = target or Target()
            fresh[device_id] = ControlledDevice(
                device_id, MappingProxyType(dict(c.original)), c.since, c.source,
                sent_on=sent.on, sent_cooling_c=sent.cooling_c, sent_heating_c=sent.heating_c,
                sent_at=sent_at if target is not None else None,
                sent_source=sent_source, sent_event=sent_event)
            frozen[device_id] = (key, shown, fresh[device_id])
        if changed or self._record is None:
            for device_id in [d for d in frozen if d not in self.controlled]:
                del frozen[device_id]
            self._record = MappingProxyType(fresh)
        if self._history_seen is None or self._history_seen != self.history:
            self._history_seen = dict(self.history)
            self._history_record = MappingProxyType(dict(self.history))
        assert self._history_record is not None
        return self._record, self._history_record

    # -- decisions -> commands -------------------------------------------------------------

    async def apply(self, decisions: Mapping[str, Decision],
                    events: Mapping[tuple[str, int], LoadControlEvent] | None = None) -> list[DeviceCommanded]:
        """Carry out the arbiter's decisions; ``events`` are the snapshot's (what a relay hands on)."""
        async with self._lock:
            now = self._clock()
            self.decisions = dict(decisions)
            self._events = events or {}
            plans: list[tuple[str, Proposal | None, Target | None]] = []
            for device_id, decision in decisions.items():
                state = self._registry.get(device_id)
                if state is None:
                    continue
                winner = decision.winner
                if winner is not None and winner.action is ProposalAction.HOLD:
                    # The customer has it in hand: as they set it it stays; there is nothing to put back.
                    await self._forget(device_id)
                    continue
                if winner is None:
                    if device_id in self.controlled:
                        plans.append((device_id, None, None))
                    continue
                target = self._target(winner, state, now)
                if target is None:
                    continue
                plans.append((device_id, winner, target))
            # Devices still controlled that no decision covers (e.g. gone from the list): restore.
            for device_id in list(self.controlled):
                if device_id not in decisions and self._registry.get(device_id) is not None:
                    plans.append((device_id, None, None))
            # How the newly held devices were is written while their commands are prepared, and is
            # on disk before any of them goes out.
            writing = self._remember_originals(
                [(d, p) for d, p, t in plans if p is not None and d not in self.controlled], now)
            try:
                prepared = [await self._prepare(device_id, winner, target, now) for device_id, winner, target in plans]
            finally:
                if writing is not None:
                    await writing
            steps = [step for step in prepared if step is not None]
            singles, batches = self._fan_out(steps)
            work = [self._execute(step, now) for step in singles]
            work += [self._execute_batch(port, on, batch, now) for port, on, batch in batches]
            sent = [result for results in await asyncio.gather(*work) for result in results]
            if sent:
                await self._log(sent)
            return sent

    def _target(self, p: Proposal, state: KnownDevice, now: datetime) -> Target | None:
        kind = state.info.kind
        original = self.controlled[state.info.device_id].original if state.info.device_id in self.controlled \
            else _snapshot_of(state.reading)
        if p.action is ProposalAction.OFF:
            return Target(on=False)
        if p.action is ProposalAction.ON:
            return Target(on=True)
        if p.action is ProposalAction.DUTY_CYCLE:
            duty = max(0.0, min(100.0, p.value if p.value is not None else 100.0)) / 100
            since = self.controlled[state.info.device_id].since if state.info.device_id in self.controlled else now
            phase = ((now - since) % self._duty_period) / self._duty_period
            return Target(on=phase < duty)
        if p.action is ProposalAction.RELAY_EVENT:
            if p.issuer_event_id is None or p.meter_id is None:
                return None
            return Target(relay_event=(p.meter_id, p.issuer_event_id))
        if kind != DeviceKind.THERMOSTAT:
            return None
        if p.action is ProposalAction.SETPOINTS:
            return Target(cooling_c=_round(p.cooling_setpoint_c), heating_c=_round(p.heating_setpoint_c))
        if p.action is ProposalAction.OFFSET and p.value is not None:
            mode = (state.reading.system_mode if state.reading else None) or "auto"
            cool = original.get("cooling_setpoint_c")
            heat = original.get("heating_setpoint_c")
            return Target(
                cooling_c=_round(cool + p.value) if isinstance(cool, int | float) and mode in ("cool", "auto") else None,
                heating_c=_round(heat - p.value) if isinstance(heat, int | float) and mode in ("heat", "auto") else None,
            )
        return None

    async def _carry_out(self, device_id: str, winner: Proposal | None, target: Target | None,
                         now: datetime) -> DeviceCommanded | None:
        step = await self._prepare(device_id, winner, target, now)
        return None if step is None else (await self._execute(step, now))[0]

    async def _prepare(self, device_id: str, winner: Proposal | None, target: Target | None,
                       now: datetime) -> _Step | None:
        """What to send a device now (None: nothing), its relay written down before it goes."""
        held = self.controlled.get(device_id)
        if held is None:
            return None
        if target is not None and held.target == target and held.failed_at is None:
            held.proposal = winner
            return None  # already so
        if held.failed_at is not None and now - held.failed_at < RETRY_AFTER and held.failed_for == target:
            return None  # failed a moment ago: try again later
        port = self._hub.device_ports.get(device_id)
        state = self._registry.get(device_id)
        name = state.info.name if state is not None else device_id
        reason = winner.reason if winner is not None else Text.of(PUT_BACK, source=held.source)
        if target is None:
            command, send = self._restore_command(device_id, held, port)
        else:
            command, send = self._command(device_id, target, held, port)
        if command is None:
            if target is None:
                await self._forget(device_id)
            return None
        if command.action is CommandAction.RELAY_EVENT and command.event is not None:
            # Written before it is sent: a device that took it (even one whose answer was lost) gets
            # the cancel when nothing holds it any more, after a restart too.
            held.relayed = command.event
            await self._remember_relayed(device_id, command.event, now)
        return _Step(device_id, winner, target, held, name, reason, command, port, send)

    def _fan_out(self, steps: list[_Step]) -> tuple[list[_Step], list[tuple[FanOutPort, bool, list[_Step]]]]:
        """Switch commands that go the same way through a port that fans out: one request for all.

        The port decides how (a Zigbee groupcast where a group fits, concurrent unicasts for the
        rest). Returns the steps sent one by one and the batches, by port and way.
        """
        fans: dict[int, bool] = {}  # id(port) -> whether it fans out (a Protocol check is slow)
        batches: dict[tuple[int, bool], list[_Step]] = {}
        singles: list[_Step] = []
        for step in steps:
            action, port = step.command.action, step.port
            if action in (CommandAction.ON, CommandAction.OFF) and step.send is not None and port is not None:
                key = id(port)
                if key not in fans:
                    fans[key] = isinstance(port, FanOutPort)
                if fans[key]:
                    batches.setdefault((key, action is CommandAction.ON), []).append(step)
                    continue
            singles.append(step)
        grouped: list[tuple[FanOutPort, bool, list[_Step]]] = []
        for (_key, on), batch in batches.items():
            port = batch[0].port
            if len(batch) < 2 or not isinstance(port, FanOutPort):
                singles.extend(batch)
                continue
            grouped.append((port, on, batch))
        return singles, grouped

    async def _execute(self, step: _Step, now: datetime) -> list[DeviceCommanded]:
        ok, detail = True, ""
        try:
            if step.send is None:
                raise DeviceError(f"{step.name} is not reachable now (its network is not up)")
            await step.send()
        except DeviceError as err:
            ok, detail = False, str(err)
        except Exception as err:  # noqa: BLE001 - a bad port must not stop the other devices
            _LOGGER.exception("Command to %s failed unexpectedly", step.name)
            ok, detail = False, f"unexpected error: {err}"
        put_back: list[str] = []
        result = self._finish(step, ok, detail, now, put_back)
        await self._forget_all(put_back)
        return [result]

    async def _execute_batch(self, port: FanOutPort, on: bool, batch: list[_Step],
                             now: datetime) -> list[DeviceCommanded]:
        try:
            outcome: Mapping[str, Exception | None] = await port.switch_all([s.device_id for s in batch], on)
        except Exception as err:  # noqa: BLE001 - a bad port must not stop the other devices
            _LOGGER.exception("Switching %d devices at once failed unexpectedly", len(batch))
            outcome = {s.device_id: err for s in batch}
        put_back: list[str] = []
        results = []
        for step in batch:
            error = outcome.get(step.device_id, DeviceError(f"{step.name} was left out of the fan-out"))
            if error is None:
                ok, detail = True, ""
            elif isinstance(error, DeviceError):
                ok, detail = False, str(error)
            else:
                ok, detail = False, f"unexpected error: {error}"
            results.append(self._finish(step, ok, detail, now, put_back))
        await self._forget_all(put_back)
        return results

    def _finish(self, step: _Step, ok: bool, detail: str, now: datetime, put_back: list[str]) -> DeviceCommanded:
        """Publish a device's outcome and note it; a device put back is added to ``put_back``."""
        device_id, winner, target, held = step.device_id, step.winner, step.target, step.held
        result = DeviceCommanded(step.command, source_of(winner), step.reason, self._clock(), ok, detail)
        self._hub.bus.publish(result)
        if not ok:
            _LOGGER.warning("Command %s to %s failed: %s", step.command.action, step.name, detail)
            held.failed_at, held.failed_for = now, target
            return result
        held.failed_at = None
        if target is None:
            self._note_history(device_id, held.original.get("on") is not False, now)
            put_back.append(device_id)
        else:
            if target.on is not None:
                self._note_history(device_id, target.on, now)
            held.target, held.sent_at, held.proposal = target, now, winner
        return result

    def _command(self, device_id: str, target: Target, held: Controlled,
                 port: DevicePort | None) -> tuple[DeviceCommand | None, Send | None]:
        if target.on is not None:
            on = target.on
            command = DeviceCommand(device_id, CommandAction.ON if on else CommandAction.OFF)
            return command, (lambda: port.switch(device_id, on)) if port else None
        if target.relay_event is not None:
            event = self._events.get(target.relay_event)
            if event is None:
                return None, None
            command = DeviceCommand(device_id, CommandAction.RELAY_EVENT, event=event)
            return command, (lambda: port.relay_event(device_id, event)) if port else None
        if target.cooling_c is None and target.heating_c is None:
            return None, None
        cool, heat = target.cooling_c, target.heating_c
        command = DeviceCommand(device_id, CommandAction.SETPOINTS, cool, heat)
        return command, (lambda: port.set_setpoints(device_id, cooling_c=cool, heating_c=heat)) if port else None

    def _restore_command(self, device_id: str, held: Controlled,
                         port: DevicePort | None) -> tuple[DeviceCommand | None, Send | None]:
        """How to put a device back; after a restart (no target known) everything noted is put back."""
        original, target = held.original, held.target
        if held.relayed is not None:
            if held.relayed.end <= self._clock():
                return None, None  # it ran its course: the device's own DRLC client ended it
            event_id = held.relayed.issuer_event_id
            command = DeviceCommand(device_id, CommandAction.CANCEL_EVENT, event=held.relayed)
            return command, (lambda: port.cancel_event(device_id, event_id)) if port else None
        cool, heat = original.get("cooling_setpoint_c"), original.get("heating_setpoint_c")
        changed_cool = target is None or target.cooling_c is not None
        changed_heat = target is None or target.heating_c is not None
        cool_f = float(cool) if isinstance(cool, int | float) and changed_cool else None
        heat_f = float(heat) if isinstance(heat, int | float) and changed_heat else None
        if cool_f is not None or heat_f is not None:
            command = DeviceCommand(device_id, CommandAction.SETPOINTS, cool_f, heat_f)
            return command, (lambda: port.set_setpoints(device_id, cooling_c=cool_f, heating_c=heat_f)) \
                if port else None
        if "on" in original or (target is not None and target.on is not None):
            on = original.get("on") is not False
            if target is not None and target.on == on:
                return None, None
            command = DeviceCommand(device_id, CommandAction.ON if on else CommandAction.OFF)
            return command, (lambda: port.switch(device_id, on)) if port else None
        return None, None

    def _note_history(self, device_id: str, on: bool, now: datetime) -> None:
        old = self.history.get(device_id, LoadHistory())
        if not on:
            self.history[device_id] = LoadHistory(off_since=old.off_since or now, on_since=None)
        elif old.off_since is not None:
            self.history[device_id] = LoadHistory(off_since=None, on_since=now)

    # -- stopping --------------------------------------------------------------------------

    async def put_back_all(self, *, each_s: float = PUT_BACK_EACH_S,
                           total_s: float = PUT_BACK_TOTAL_S) -> tuple[list[str], dict[str, str]]:
        """Put back every device it holds, before the appliance stops (SIGTERM): bounded in time.

        Each device gets ``each_s`` to answer, all of them ``total_s``. A device put back is
        forgotten (its row goes), so the next start does not put it back again; one that did not
        answer keeps its row and is put back after the next start. A device holding a relayed event
        keeps it: its own DRLC client ends it at the event's end, and sending the cancel would make
        a device that ignores a known IssuerEventID sit the rest of the event out after the restart.
        Returns the names put back and, by name, why the others were not. The caller stops the
        cycle first, so nothing sheds again behind it.
        """
        restored: list[str] = []
        failed: dict[str, str] = {}
        try:
            async with asyncio.timeout(total_s):
                async with self._lock:
                    now = self._clock()
                    ids = [d for d, c in self.controlled.items() if c.relayed is None]
                    for device_id in ids:
                        self.controlled[device_id].failed_at = None  # the last chance: try each again now
                    results = await asyncio.gather(*(self._put_back(d, now, each_s) for d in ids))
        except TimeoutError:
            results = []
            failed.update({self._name(d): f"no answer within {total_s:g} s" for d in self.controlled
                           if self.controlled[d].relayed is None})
        sent = []
        for device_id, result, error in results:
            name = self._name(device_id)
            if result is not None:
                sent.append(result)
            if error is None and device_id not in self.controlled:
                restored.append(name)
            elif error is not None:
                failed[name] = error
        if sent:
            await self._log(sent)
        relayed = [self._name(d) for d, c in self.controlled.items() if c.relayed is not None]
        _LOGGER.info("Put %d device(s) back before stopping%s", len(restored),
                     f": {', '.join(sorted(restored))}" if restored else "")
        for name, error in sorted(failed.items()):
            _LOGGER.warning("Could not put %s back before stopping (%s); it is put back after the next start",
                            name, error)
        if relayed:
            _LOGGER.info("Left the relayed event with %s: the device ends it itself at the event's end",
                         ", ".join(sorted(relayed)))
        return restored, failed

    async def _put_back(self, device_id: str, now: datetime,
                        each_s: float) -> tuple[str, DeviceCommanded | None, str | None]:
        try:
            async with asyncio.timeout(each_s):
                result = await self._carry_out(device_id, None, None, now)
        except TimeoutError:
            return device_id, None, f"no answer within {each_s:g} s"
        if result is not None and not result.ok:
            return device_id, result, result.detail or "refused"
        if device_id in self.controlled:
            return device_id, result, "nothing to send it"
        return device_id, result, None

    def _name(self, device_id: str) -> str:
        state = self._registry.get(device_id)
        return state.info.name if state is not None else device_id

    # -- storage ---------------------------------------------------------------------------

    def _remember_originals(self, new: list[tuple[str, Proposal | None]],
                            now: datetime) -> asyncio.Future[None] | None:
        """Hold the new devices now and write down how they were: the write, under way (None: none)."""
        rows = []
        for device_id, winner in new:
            state = self._registry.get(device_id)
            original = _snapshot_of(state.reading if state is not None else None)
            self.controlled[device_id] = Controlled(original, now, source_of(winner))
            rows.append({"device_id": device_id, "original": original, "since": now, "source": source_of(winner)})
        if not rows:
            return None
        return asyncio.ensure_future(
            self._hub.store.write("remember device states", lambda conn: _save_controlled(conn, rows)))

    async def _remember_relayed(self, device_id: str, event: LoadControlEvent, now: datetime) -> None:
        _kind, payload = encode(event)
        row = {"device_id": device_id, "meter_id": event.meter_id, "issuer_event_id": event.issuer_event_id,
               "event": payload, "relayed_at": now}
        try:
            await self._hub.store.write("remember a relayed event", lambda conn: _save_relayed(conn, row))
        except StoreError as err:  # the relay still goes out: controlling the device comes first
            _LOGGER.warning("The event relayed to %s could not be written down (%s); a restart before it "
                            "ends will not cancel it on the device", self._name(device_id), err)

    async def _forget(self, device_id: str) -> None:
        await self._forget_all([device_id])

    async def _forget_all(self, device_ids: list[str]) -> None:
        gone = [d for d in device_ids if self.controlled.pop(d, None) is not None]
        if gone:
            await self._hub.store.write("forget device state", lambda conn: _delete_controlled(conn, gone))

    async def _log(self, sent: list[DeviceCommanded]) -> None:
        # The reason once: its msgid and values in the detail (each reader's language), and its English
        # rendering in ``reason`` for whatever reads the rows without a catalog.
        rows = [{
            "device_id": r.command.device_id, "action": str(r.command.action),
            "detail": {"cooling_setpoint_c": r.command.cooling_setpoint_c,
                       "heating_setpoint_c": r.command.heating_setpoint_c,
                       "issuer_event_id": r.command.event.issuer_event_id if r.command.event else None,
                       REASON_TEMPLATE: r.reason.msgid, REASON_PARAMS: dict(r.reason.params)},
            "source": r.source[:128], "reason": r.reason.english(), "at": r.at, "ok": r.ok, "error": r.detail or None,
        } for r in sent]
        try:
            await self._hub.store.write("log device commands", lambda conn: _insert(conn, tables.device_commands, rows))
        except Exception:  # noqa: BLE001 - the log is for display; the command itself went out
            _LOGGER.warning("Device commands could not be logged", exc_info=True)


def _snapshot_of(reading: DeviceReading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    return {k: v for k, v in (("on", reading.on), ("cooling_setpoint_c", reading.cooling_setpoint_c),
                              ("heating_setpoint_c", reading.heating_setpoint_c),
                              ("system_mode", reading.system_mode)) if v is not None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value * 2) / 2  # thermostats take half degrees well


async def _controlled(conn: AsyncConnection) -> list[tuple[str, dict[str, Any], datetime, str]]:
    t = tables.controlled_devices
    return [(r.device_id, dict(r.original), r.since, r.source) for r in await conn.execute(select(t))]


async def _save_controlled(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    t = tables.controlled_devices
    stmt = insert(conn, t)
    stmt = stmt.on_conflict_do_nothing(index_elements=["device_id"])
    await conn.execute(stmt, rows)


async def _delete_controlled(conn: AsyncConnection, device_ids: list[str]) -> None:
    for t in (tables.controlled_devices, tables.relayed_events):
        for start in range(0, len(device_ids), 500):  # within any SQLite's bound-variable limit
            await conn.execute(delete(t).where(t.c.device_id.in_(device_ids[start:start + 500])))


async def _relayed(conn: AsyncConnection) -> list[tuple[str, LoadControlEvent]]:
    t = tables.relayed_events
    found = []
    for r in await conn.execute(select(t)):
        try:
            found.append((r.device_id, decode(LoadControlEvent, dict(r.event))))
        except (TypeError, ValueError, KeyError):
            _LOGGER.warning("The event relayed to %s (%s %s) could not be read back; not cancelled on it",
                            r.device_id, r.meter_id, r.issuer_event_id)
    return found


async def _save_relayed(conn: AsyncConnection, row: dict[str, Any]) -> None:
    t = tables.relayed_events
    stmt = insert(conn, t).on_conflict_do_update(
        index_elements=["device_id"],
        set_={k: row[k] for k in ("meter_id", "issuer_event_id", "event", "relayed_at")})
    await conn.execute(stmt, row)


async def _insert(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    await conn.execute(table.insert(), rows)
