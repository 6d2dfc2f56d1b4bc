"""MQTT figures (issue 17): command -> device command, and state change -> MQTT publish, p99 in ms.

The whole appliance (simulated meter and home, tests/e2e's running_appliance) against a real
mosquitto on a free loopback port (tests/mosquitto.py), with a plain MQTT client playing Home
Assistant in the same process and event loop, so both ends read one clock:

- ``mqtt_cmd_p99_ms``: the client publishes ``take_out`` (then ``put_back``) for the pool pump
  during an event -> the dispatcher's DeviceCommanded for the pump (the On/Off command sent and
  acknowledged by the simulated plug). Broker round trip, token check, participation change,
  control cycle, the Zigbee command: all inside.
- ``mqtt_pub_p99_ms``: a MeterReading with a new demand published on the bus -> the client
  receiving the new ``demand_kw`` value from the broker.

Targets: both under 100 ms. Run: ``PYTHONPATH=. .venv/bin/python bench/mqtt.py [--samples N]``.
The last line is ``mqtt_cmd_p99_ms=.. mqtt_pub_p99_ms=..`` (bench/programs.py, when the OpenADR
half lands, can import ``run`` and print both halves on one line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ems.accounts import Accounts, Scope  # noqa: E402
from ems.model import DeviceCommanded, MeterReading  # noqa: E402
from integrations.mqtt.discovery import number  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    HOME_CONFIG,
    HOME_IEEE,
    HOME_RULES,
    HOME_SCENARIO,
    OWNER,
    local_clock,
    running_appliance,
)
from tests.mosquitto import Watcher, running_broker  # noqa: E402

SITE = "bench"
# The pump may go off again at once after it was put back on (the comfort rule's 10 min would make
# every second command, the put_back, wait; the bench measures the path, not that rule).
RULES = HOME_RULES.replace("devices:\n", "devices:\n  Pool pump: {min_on_min: 0}\n", 1)
SCENARIO: dict[str, Any] = {
    **HOME_SCENARIO,
    "events": [{"at": 1.0, "id": 5101, "starts_in": "2s", "duration_min": 60, "criticality": 3,
                "device_class": 0x0019, "cooling_offset_c": 2.0}],
}


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 else samples[0]


async def _until(predicate: Any, guard_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + guard_s
    while not predicate():
        if loop.time() > deadline:
            raise RuntimeError("the bench timed out waiting")
        await asyncio.sleep(0.01)


async def run(samples: int = 100) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with running_broker(folder / "broker") as broker, Watcher(broker.port) as ha:
            config = HOME_CONFIG + f"\nmqtt: {{host: 127.0.0.1, port: {broker.port}, site_id: {SITE}}}\n"
            async with running_appliance(folder, SCENARIO, config_text=config, rules_text=RULES,
                                         clock=local_clock("20:00")) as home:
                hub = home.hub
                pump = HOME_IEEE["pump"]
                await home.online()
                await _until(lambda: (view := hub.control.load_control.view("main", 5101)) is not None
                             and str(view.phase) == "active" and not home.simulator.home.device("Pool pump").on)
                loop = asyncio.get_running_loop()

                # state change -> MQTT publish
                topic = f"ems/{SITE}/bench/demand_kw"
                pub: list[float] = []
                for i in range(samples):
                    value = 100 + (i + 1) / 1000
                    expected = number(value).encode()
                    began = loop.time()
                    hub.bus.publish(MeterReading("bench", hub.clock(), demand_kw=value))
                    await _until(lambda v=expected: ha.latest.get(topic) == v)
                    arrived = next(at for t, p, _r, at in reversed(ha.seen) if t == topic)
                    pub.append((arrived - began) * 1000)

                # MQTT command -> device command
                accounts = Accounts(hub.store)
                owner = await accounts.user(OWNER)
                assert owner is not None
                token = (await accounts.create_token(owner, "bench", [Scope.OVERRIDE_EVENTS])).secret
                commanded: list[float] = []
                hub.bus.listen(DeviceCommanded, lambda e: commanded.append(loop.time())
                               if e.command.device_id == pump and e.ok else None)
                cmd: list[float] = []
                for i in range(samples):
                    name = "take_out" if i % 2 == 0 else "put_back"
                    commanded.clear()
                    began = loop.time()
                    await ha.publish(f"ems/{SITE}/main/command/{name}",
                                     json.dumps({"token": token, "device_id": pump, "event_id": 5101}))
                    try:
                        await _until(lambda: bool(commanded), guard_s=20)
                    except RuntimeError:
                        answer = ha.latest.get(f"ems/{SITE}/main/command/{name}/result")
                        raise RuntimeError(f"command {i} ({name}) moved no device; the answer: {answer!r}") from None
                    cmd.append((commanded[0] - began) * 1000)
                    await asyncio.sleep(0.05)  # the plug's report lands before the next command
    return {"mqtt_cmd_p99_ms": _p99(cmd), "mqtt_cmd_p50_ms": statistics.median(cmd),
            "mqtt_pub_p99_ms": _p99(pub), "mqtt_pub_p50_ms": statistics.median(pub)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    figures = asyncio.run(run(args.samples))
    print(f"MQTT command -> device command: p50 {figures['mqtt_cmd_p50_ms']:.1f} ms, "
          f"p99 {figures['mqtt_cmd_p99_ms']:.1f} ms ({args.samples} commands)")
    print(f"state change -> MQTT publish: p50 {figures['mqtt_pub_p50_ms']:.1f} ms, "
          f"p99 {figures['mqtt_pub_p99_ms']:.1f} ms ({args.samples} changes)")
    print(f"mqtt_cmd_p99_ms={figures['mqtt_cmd_p99_ms']:.1f} mqtt_pub_p99_ms={figures['mqtt_pub_p99_ms']:.1f}")


if __name__ == "__main__":
    main()
