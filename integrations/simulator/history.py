"""Past interval readings for the demo, made from the scenario's household model.

A fresh demo has no history, so the baseline of a DR event ("the same hours on the ten most
recent similar days"), the usage chart and the bill would have nothing to stand on. The demo
seeds the weeks before the simulated meter's own one-day profile with what the same household
and its devices would have used (``loads.HomeLoadModel``, the model the meter's own last day is
made with), marked nowhere as real meter data: only ``ems demo`` does this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ems.model import IntervalReading
from integrations.simulator.household import Household
from integrations.simulator.loads import HomeLoadModel

STEP = timedelta(minutes=1)  # the household and the devices are sampled every minute


def synthesize_intervals(
    household: Household, meter_id: str, start: datetime, end: datetime, period: timedelta,
    home: dict[str, Any] | None = None,
) -> list[IntervalReading]:
    """Intervals from ``start`` (aligned down to ``period``) up to ``end``, net of the solar, with
    the home devices' own load when the scenario has a home (``loads.HomeLoadModel``: the
    thermostat's HVAC replaces the household's own HVAC term, as on the live meter)."""
    model = HomeLoadModel(home, household)
    include_hvac = not model.has_thermostat
    period_s = int(period.total_seconds())
    first = datetime.fromtimestamp(int(start.timestamp()) // period_s * period_s, start.tzinfo)
    count = int((end - first) / period)
    step = min(STEP, period)
    per_interval = max(1, round(period / step))
    step = period / per_interval
    hours = step.total_seconds() / 3600
    devices = model.series(first, first + period * count, step)
    readings = []
    for index in range(count):
        at = first + period * index
        consumed = generated = 0.0
        for i in range(per_interval):
            moment = at + step * i
            net = household.net_kw(moment + step / 2, devices[index * per_interval + i], include_hvac=include_hvac)
            if net >= 0:
                consumed += net * hours
            else:
                generated -= net * hours
        readings.append(IntervalReading(meter_id, at, period_s, round(consumed, 4), round(generated, 4)))
    return readings


class SimulatorLog:
    """What the simulated HAN did, as JSON lines, for a bench that kills the appliance (bench/soak.py).

    The utility's side of the story, written as it happens: every metering value the meter sent
    (attribute reports and read answers, raw with its formatting), every interval it closed (the
    backfilled day first), every event, cancel and message it sent, every report the EMS sent it
    (``SimulatedMeter.answers``), every SE rule the checker saw broken, and each home device's
    controlled state when it changes. Each line has ``k`` (kind), ``t`` (simulated time) and
    ``w`` (real Unix time).
    """

    def __init__(self, simulator: Any, path: Any, poll_s: float = 0.05) -> None:
        self._sim = simulator
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the simulator
        self._poll_s = poll_s
        self._counts = {"answers": 0, "messages": 0, "violations": 0}
        self._last_interval: datetime | None = None
        self._devices: dict[str, Any] = {}
        self._task: Any = None

    def write(self, record: str, /, **fields: Any) -> None:
        import json
        import time

        self._out.write(json.dumps({"k": record, "t": self._sim.clock().isoformat(), "w": time.time(), **fields},
                                   default=str) + "\n")

    def start(self) -> None:
        import asyncio

        meter = self._sim.meter
        self.write("formatting", multiplier=meter.multiplier, divisor=meter.divisor,
                   period_s=int(meter.period.total_seconds()))
        meter.node.observe(self._frame)
        changed = self._sim.home.on_change

        def on_change() -> None:
            changed()
            self._poll_devices()

        self._sim.home.on_change = on_change
        self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name="simulator-log")

    def _frame(self, frame: Any) -> None:
        from zigpy.zcl import foundation

        from integrations.zigbee.se import inbound
        from integrations.zigbee.se.clusters import Drlc, Metering

        if not frame.outgoing:
            return
        if frame.cluster_id == Metering.cluster_id:
            decoded = inbound.decode(Metering, frame.payload)
            name, payload = decoded.name, decoded.payload
            if name == "Report_Attributes":
                values = {int(r.attrid): getattr(r.value, "value", None) for r in payload.attribute_reports}
            elif name == "Read_Attributes_rsp":
                values = {int(r.attrid): getattr(r.value, "value", None) for r in payload.status_records
                          if r.status == foundation.Status.SUCCESS}
            else:
                return
            values = {a: int(v) for a, v in values.items() if a in (0x0000, 0x0001, 0x0400) and v is not None}
            if values:
                self.write("reported", how=name, values=values)
        elif frame.cluster_id == Drlc.cluster_id:
            decoded = inbound.decode(Drlc, frame.payload)
            if decoded.payload is not None and decoded.name in (
                    "load_control_event", "cancel_load_control_event", "cancel_all_load_control_events"):
                self.write("drlc", command=decoded.name, fields={k: int(v) for k, v in decoded.payload.as_dict().items()})

    async def _poll_forever(self) -> None:
        import asyncio

        while True:
            self.poll()
            await asyncio.sleep(self._poll_s)

    def poll(self) -> None:
        meter = self._sim.meter
        for interval in list(meter.intervals):
            if self._last_interval is None or interval.start > self._last_interval:
                self._last_interval = interval.start
                self.write("interval", start=interval.start.isoformat(), consumed_raw=meter.raw(interval.consumed_kwh),
                           generated_raw=meter.raw(interval.generated_kwh))
        for answer in meter.answers[self._counts["answers"]:]:
            self.write("answer", at=answer.at.isoformat(), cluster_id=answer.cluster_id, command=answer.command,
                       tsn=answer.tsn, fields={k: v if isinstance(v, (int, str)) else str(v)
                                               for k, v in answer.fields.items()})
        self._counts["answers"] = len(meter.answers)
        for message in meter.messages[self._counts["messages"]:]:
            self.write("message", message_id=message.message_id, control=message.control)
        self._counts["messages"] = len(meter.messages)
        violations = meter.checker.violations
        for violation in violations[self._counts["violations"]:]:
            self.write("violation", rule=violation.rule, detail=violation.detail)
        self._counts["violations"] = len(violations)
        self._poll_devices()

    def _poll_devices(self) -> None:
        for device in self._sim.home.devices:
            if device.kind == "plug":
                state: Any = {"on": device.on}
            elif device.kind == "thermostat":
                state = {"setpoints_centi": list(device.setpoints_centi)}
            elif device.kind == "load_controller":
                state = {"shedding": device.shedding}
            else:
                continue
            if self._devices.get(device.name) != state:
                self._devices[device.name] = state
                self.write("device", name=device.name, kind=device.kind, state=state)
