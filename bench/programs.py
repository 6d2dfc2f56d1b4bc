"""Utility programs and Home Assistant: how fast a program's event reaches the home, and MQTT's paths.

The whole appliance runs in this process against the simulated meter and home (the e2e harness,
tests/e2e/conftest.py), with the customer's rules following every event.

openadr_s: openleadr's own VTN on loopback (tests/integrations/openadr/vtn.py) with the VEN polling
every second. Each trial adds a SIMPLE event (level 2, starting now) at the VTN and times until both
the simulated thermostat's cooling set point is raised (the device controlled: the pool pump is not
used, as a plug just put back on must stay on a while) and the VTN has received the VEN's optIn;
then the VTN cancels the event and the set point is back before the next trial. The
first trial is a warm-up and not counted. The figure is the worst counted trial; the target is the
poll interval plus 2 s.

    python bench/programs.py [--trials 6]

Sections: each program or integration adds a function returning its figures (name -> value) to
SECTIONS; the last line joins them all: ``openadr_s=.. mqtt_cmd_p99_ms=.. mqtt_pub_p99_ms=..``.

mqtt_cmd_p99_ms, mqtt_pub_p99_ms: bench/mqtt.py (a real mosquitto on loopback; its docstring says
what each one times); ``--samples N`` of each.

z2m_cmd_p99_ms: a zigbee2mqtt plug switched through its DevicePort until zigbee2mqtt's state
confirms it (``zigbee2mqtt`` below), ``--samples N`` commands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import HOME_CONFIG, HOME_RULES, HOME_SCENARIO, running_appliance  # noqa: E402
from tests.integrations.openadr.vtn import VEN_ID, Vtn  # noqa: E402

POLL_S = 1.0
TARGET_BEYOND_POLL_S = 2.0


async def openadr(trials: int) -> dict[str, float]:
    vtn = Vtn(poll_s=POLL_S, sampling=timedelta(seconds=5))
    await vtn.start()
    config = HOME_CONFIG + f"\nopenadr:\n  vtn_url: {vtn.url}\n  ven_name: home\n  poll_interval_s: {POLL_S}\n"
    times: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_appliance(Path(tmp), {**HOME_SCENARIO, "events": []}, config_text=config,
                                         rules_text=HOME_RULES) as home:
                await home.online()
                await home.wait_until(lambda: len(home.hub.control.registry.devices) == 3, timeout_s=15)
                await home.wait_until(lambda: home.hub.integrations["openadr"].registered.is_set())
                thermostat = home.simulator.home.device("Living room").logic
                for trial in range(trials + 1):
                    event_id = f"bench-{trial}"
                    await home.wait_until(lambda: thermostat.cooling_setpoint_c == 24, what="the thermostat at 24 °C")
                    started = time.perf_counter()
                    vtn.server.add_event(
                        ven_id=VEN_ID, signal_name="SIMPLE", signal_type="level", event_id=event_id,
                        intervals=[{"dtstart": datetime.now(UTC), "duration": timedelta(minutes=5),
                                    "signal_payload": 2}], callback=_answered)
                    await home.wait_until(lambda event_id=event_id: thermostat.cooling_setpoint_c > 24 and (event_id, "optIn") in vtn.seen.opt_types,
                                          what="the thermostat raised and optIn at the VTN")
                    took = time.perf_counter() - started
                    print(f"openadr trial {trial}{' (warm-up)' if trial == 0 else ''}: {took:.2f} s", flush=True)
                    if trial:
                        times.append(took)
                    vtn.server.cancel_event(VEN_ID, event_id)
                    await home.wait_until(lambda: thermostat.cooling_setpoint_c == 24, what="the thermostat back after the cancel")
    finally:
        await vtn.stop()
    worst = max(times)
    print(f"openadr: worst {worst:.2f} s over {len(times)} trials (target < {POLL_S + TARGET_BEYOND_POLL_S:.1f} s: "
          f"poll {POLL_S:.0f} s + {TARGET_BEYOND_POLL_S:.0f} s) {'PASS' if worst < POLL_S + TARGET_BEYOND_POLL_S else 'FAIL'}")
    return {"openadr_s": round(worst, 2)}


def _answered(ven_id: str, event_id: str, opt_type: str) -> None:
    return None


async def mqtt(samples: int) -> dict[str, float]:
    """MQTT command -> device command and state change -> MQTT publish, p99 in ms (bench/mqtt.py)."""
    sys.path.insert(0, str(REPO / "bench"))
    import mqtt as mqtt_bench  # bench/mqtt.py: also runs alone

    figures = await mqtt_bench.run(samples)
    print(f"mqtt: command -> device command p50 {figures['mqtt_cmd_p50_ms']:.1f} ms, p99 "
          f"{figures['mqtt_cmd_p99_ms']:.1f} ms; state change -> publish p50 {figures['mqtt_pub_p50_ms']:.1f} ms, "
          f"p99 {figures['mqtt_pub_p99_ms']:.1f} ms ({samples} each; targets < 100 ms)", flush=True)
    return {"mqtt_cmd_p99_ms": round(figures["mqtt_cmd_p99_ms"], 1),
            "mqtt_pub_p99_ms": round(figures["mqtt_pub_p99_ms"], 1)}


async def zigbee2mqtt(samples: int) -> dict[str, float]:
    """A zigbee2mqtt plug switched through its DevicePort until zigbee2mqtt's state says so, p99 in ms.

    The simulated zigbee2mqtt (tests/integrations/mqtt/zigbee2mqtt_sim.py) on a real mosquitto answers
    each ``/set`` with the new state at once, so this is the appliance's own leg: the command out
    through the broker, zigbee2mqtt's confirmation in (a real device adds its Zigbee round trip)."""
    import statistics

    from tests.integrations.mqtt.test_zigbee2mqtt import PLUG_ID, running_home

    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with running_home(Path(tmp)) as home:
            port = home.hub.device_ports[PLUG_ID]
            for sample in range(samples + 1):
                started = time.perf_counter()
                await port.switch(PLUG_ID, sample % 2 == 1)
                if sample:
                    times.append((time.perf_counter() - started) * 1000)
    p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 2 else times[0]
    print(f"zigbee2mqtt: plug switched and confirmed p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms "
          f"({len(times)} commands; target < 100 ms)", flush=True)
    return {"z2m_cmd_p99_ms": round(p99, 1)}


SECTIONS: list[Callable[[argparse.Namespace], Awaitable[dict[str, float]]]] = [
    lambda args: openadr(args.trials),
    lambda args: mqtt(args.samples),
    lambda args: zigbee2mqtt(args.samples),
]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--samples", type=int, default=100, help="MQTT commands and state changes timed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    figures: dict[str, float] = {}
    for section in SECTIONS:
        figures.update(await section(args))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    asyncio.run(main())
