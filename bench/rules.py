"""Benchmark: 500 varied customer rules evaluated against one state change in a 20-device home.

The rules mix every trigger (event phases with filters, price, tier, demand held for minutes,
temperatures, schedules), condition, target and action (follow_event, shedding to a limit and by
a percentage, setpoints, offsets, switching, duty cycles, notifications). The snapshot is a summer
weekday at 16:30 with one active and one announced event, an hour of demand history and 20 devices.
Run: .venv/bin/python bench/rules.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ems.model import (  # noqa: E402
    Criticality,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    DeviceView,
    EventPhase,
    EventView,
    LoadControlEvent,
    Snapshot,
    Trigger,
    TriggerKind,
)
from rules import check_conflicts, evaluate, parse_rules  # noqa: E402

RULES = 500
REPEATS = 300
TZ = ZoneInfo("America/Los_Angeles")
NOW = datetime(2024, 7, 10, 23, 30, tzinfo=UTC)  # Wednesday 16:30 in Los Angeles

# (name, kind, class, nominal kW): the simulator's six devices and fourteen more.
DEVICES = [
    ("Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC, 3.5),
    ("Bedroom", DeviceKind.THERMOSTAT, DeviceClass.HVAC, 2.5),
    ("Office", DeviceKind.THERMOSTAT, DeviceClass.HVAC, 1.5),
    ("Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, 1.5),
    ("Water heater", DeviceKind.SWITCH, DeviceClass.WATER_HEATER, 4.5),
    ("EV charger", DeviceKind.SWITCH, DeviceClass.ELECTRIC_VEHICLE, 7.2),
    ("Second EV charger", DeviceKind.SWITCH, DeviceClass.ELECTRIC_VEHICLE, 3.6),
    ("Home battery", DeviceKind.BATTERY, DeviceClass.GENERATION, None),
    ("Spa heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.SMART_APPLIANCE, 2.0),
    ("Dryer", DeviceKind.LOAD_CONTROLLER, DeviceClass.SMART_APPLIANCE, 3.0),
    ("Dishwasher", DeviceKind.SWITCH, DeviceClass.SMART_APPLIANCE, 1.2),
    ("Irrigation", DeviceKind.SWITCH, DeviceClass.IRRIGATION_PUMP, 0.8),
    ("Porch lights", DeviceKind.SWITCH, DeviceClass.EXTERIOR_LIGHTING, 0.2),
    ("Garage lights", DeviceKind.SWITCH, DeviceClass.INTERIOR_LIGHTING, 0.1),
    ("Garage heater", DeviceKind.SWITCH, DeviceClass.STRIP_HEATER, 1.5),
    ("Freezer", DeviceKind.SWITCH, DeviceClass.SIMPLE_LOAD, 0.3),
    ("Dehumidifier", DeviceKind.SWITCH, DeviceClass.SIMPLE_LOAD, 0.6),
    ("Workshop", DeviceKind.SWITCH, DeviceClass.COMMERCIAL_LOAD, 2.5),
    ("Heat pump water heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.WATER_HEATER, 1.0),
    ("Sauna", DeviceKind.SWITCH, DeviceClass.STRIP_HEATER, 6.0),
]

TRIGGERS = [
    "      - event: active\n",
    "      - event: {{phase: announced, within_min: {m}}}\n",
    "      - event: {{phase: active, min_criticality: {c}, device_class: [hvac, pool_pump]}}\n",
    "      - event: {{phase: active, enrollment_group: {g}}}\n",
    "      - event: ended\n",
    "      - price: {{at_least_per_kwh: 0.{p}}}\n",
    "      - price_tier: {{at_least: {t}}}\n",
    "      - demand: {{above_kw: {k}, for_min: {m}}}\n",
    "      - indoor_temperature: {{above_c: 2{t}, device: {name}}}\n",
    "      - outdoor_temperature: {{above_c: 3{t}}}\n",
    "      - schedule: {{from: '1{t}:00', to: '{e}:00', days: weekdays}}\n",
]
CONDITIONS = [
    "      - time: {{from: '1{t}:00', to: '0{t}:00'}}\n",
    "      - days: [mon, wed, fri]\n",
    "      - season: summer\n",
    "      - demand: {{above_kw: {t}, below_kw: 2{t}}}\n",
    "      - event: {{active: true, min_criticality: {c}}}\n",
    "      - outdoor_temperature: {{above_c: 2{t}}}\n",
]
TARGETS = ["all", "[{name}]", "[{{kind: switch}}]", "[{{kind: thermostat}}]", "[{{device_class: [{cls}]}}]",
           "[{name}, {other}]"]
ACTIONS = ["follow_event", "turn_off", "turn_on", "{{duty_cycle_pct: {pct}}}", "{{offset_c: {t}}}",
           "{{setpoint: {{cooling_c: 2{t}}}}}", "{{shed_to_limit_kw: {k}}}", "{{reduce_load_pct: {pct}}}",
           "{{notify: 'Event {{event_id}} until {{end}}'}}"]
CLASSES = ["hvac", "pool_pump", "water_heater", "electric_vehicle", "smart_appliance", "strip_heater"]


def rules_text(rng: random.Random) -> str:
    lines = ["devices:\n"]
    for name, *_rest in DEVICES:
        lines.append(f"  {name}: {{shed_priority: {rng.randint(0, 100)}, max_offset_c: {rng.choice([2, 3, 4])}}}\n")
    lines.append("rules:\n")
    for i in range(RULES):
        values = {"m": rng.randint(1, 60), "c": rng.randint(1, 6), "g": rng.randint(0, 3), "p": rng.randint(10, 40),
                  "t": rng.randint(1, 9), "e": rng.randint(18, 23), "k": rng.randint(4, 15), "pct": rng.randint(5, 90),
                  "name": rng.choice(DEVICES)[0], "other": rng.choice(DEVICES)[0], "cls": rng.choice(CLASSES)}
        text = f"  - name: Rule {i}\n    priority: {rng.randint(0, 100)}\n"
        triggers = rng.sample(TRIGGERS, rng.randint(0, 2))
        if triggers:
            text += "    triggers:\n" + "".join(t.format(**values) for t in triggers)
        conditions = rng.sample(CONDITIONS, rng.randint(0, 2))
        if conditions:
            text += "    conditions:\n" + "".join(c.format(**values) for c in conditions)
        text += f"    targets: {rng.choice(TARGETS).format(**values)}\n"
        text += f"    action: {rng.choice(ACTIONS).format(**values)}\n"
        lines.append(text)
    return "".join(lines)


def home_snapshot(rng: random.Random) -> Snapshot:
    devices = []
    for i, (name, kind, cls, kw) in enumerate(DEVICES):
        device_id = f"00:0d:6f:00:00:00:{i // 256:02x}:{i % 256:02x}"
        info = DeviceInfo(device_id, name, kind, cls, enrollment_group=rng.randint(0, 3), nominal_kw=kw,
                          discovered_at=NOW - timedelta(days=30))
        if kind == DeviceKind.THERMOSTAT:
            reading = DeviceReading(device_id, NOW, indoor_c=rng.uniform(21, 28), cooling_setpoint_c=24.0,
                                    heating_setpoint_c=20.0, system_mode="cool")
        elif kind == DeviceKind.BATTERY:
            reading = DeviceReading(device_id, NOW, power_kw=-1.0, soc_pct=70.0)
        else:
            on = rng.random() < 0.7
            reading = DeviceReading(device_id, NOW, power_kw=(kw or 0.0) * on, on=on)
        devices.append(DeviceView(info, reading))
    active = LoadControlEvent("meter-1", 1234, DeviceClass.HVAC | DeviceClass.POOL_PUMP | DeviceClass.WATER_HEATER
                              | DeviceClass.SMART_APPLIANCE, 0, NOW - timedelta(minutes=10), 120, Criticality.LEVEL_3,
                              NOW - timedelta(hours=2), cooling_offset_c=2.0, average_load_adjustment_pct=-20)
    announced = LoadControlEvent("meter-1", 1235, DeviceClass.ELECTRIC_VEHICLE | DeviceClass.STRIP_HEATER, 2,
                                 NOW + timedelta(minutes=25), 60, Criticality.LEVEL_4, NOW - timedelta(hours=1),
                                 duty_cycle_pct=30)
    events = (
        EventView(active, EventPhase.ACTIVE, active.start, active.end),
        EventView(announced, EventPhase.SCHEDULED, announced.start, announced.end),
    )
    history = tuple((NOW - timedelta(seconds=30 * k), 9.0 + rng.uniform(-1, 4)) for k in range(120, 0, -1))
    return Snapshot(at=NOW, local=NOW.astimezone(TZ), trigger=Trigger(TriggerKind.EVENT_STARTED, "meter-1", 1234),
                    demand_kw=12.5, demand_history=history, price_per_kwh=0.32, price_tier=3, outdoor_c=34.0,
                    devices=tuple(devices), events=events)


def main() -> None:
    rng = random.Random(2024)
    text = rules_text(rng)
    t0 = time.perf_counter()
    ruleset = parse_rules(text, "bench-rules.yaml")
    parse_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    warnings = check_conflicts(ruleset)
    conflicts_ms = (time.perf_counter() - t0) * 1000
    snap = home_snapshot(rng)
    proposals = evaluate(ruleset, snap)  # warm-up (and the figures printed below)
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        evaluate(ruleset, snap)
        runs.append((time.perf_counter() - t0) * 1000)
    p50 = statistics.median(runs)
    p95 = statistics.quantiles(runs, n=20)[18]
    held = len({p.rule for p in proposals})
    kinds = Counter(p.action.value for p in proposals)
    print(f"{len(ruleset.rules)} rules ({len(text.splitlines())} lines of YAML), {len(snap.devices)} devices, "
          f"{len(snap.events)} events (one active, one announced), {len(snap.demand_history)} demand readings.")
    print(f"Parse and validate: {parse_ms:.0f} ms once; conflict check: {conflicts_ms:.0f} ms once "
          f"({len(warnings)} warnings).")
    print(f"evaluate: {held} rules held, {len(proposals)} proposals ({', '.join(f'{k} {n}' for k, n in kinds.most_common())}).")
    print(f"evaluate over {REPEATS} repetitions: median (p50) {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"mean {statistics.fmean(runs):.2f} ms, fastest {min(runs):.2f} ms per evaluation.")
    print(f"rules={len(ruleset.rules)} ms={p50:.2f}")


if __name__ == "__main__":
    main()
