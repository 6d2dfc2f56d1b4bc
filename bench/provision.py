"""Commissioning and provisioning figures (issue 15).

1. Power-on to "configured" with a registered install code (target < 10 s): the whole appliance
   starts in this process against the simulated meter, which is the coordinator and trust center
   of its network and has the appliance's install code registered (as the utility does once the
   customer gave it). Timed from the hub's start to the CommissioningStage "configured" (the
   utility's configuration applied and its test message confirmed); each stage is printed with its
   time from power-on.

2. Remote HAN messages answered (I1NFR4: within 60 s): once configured, the meter sends twenty
   LoadControlEvents one after another; each is timed from the meter's send to the appliance's
   ReportEventStatus "received" as the meter records it (what the utility sees come back).
3. The devices' part (``bench/provision_devices.py``): twenty home devices joined, discovered,
   provisioned and acknowledged, every step in the log, and the local round trips' p99 (I1NFR5).

    python bench/provision.py [--runs 3]
Last line: configured_s=.. devices=20 provisioned_s=.. local_reply_p99_ms=.. remote_reply_p99_ms=..
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ems.cli import compose, read_config  # noqa: E402
from ems.model import CommissioningStage, CommissioningStep  # noqa: E402
from integrations.simulator import SimulatedHan, scenario_from_dict  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from provision_devices import DEVICES, LOCAL_LIMIT_MS, TARGET_S, provision_devices  # noqa: E402

CONFIG = """
web: {host: 127.0.0.1, port: 0}
zigbee_se: {report_interval_s: 1, stale_after_s: 30}
"""
SCENARIO = {
    "name": "provision",
    "meter": {"configuration": {"enrollment_group": 3, "start_randomization_min": 10, "duration_randomization_min": 0,
                                "price_increase_randomize_min": 5, "price_decrease_randomize_min": 15,
                                "test_message": "Test message from your utility."}},
}
CONFIGURED_TIMEOUT_S = 120.0
REMOTE_MESSAGES = 20
REMOTE_LIMIT_MS = 60_000.0
REPLY_TIMEOUT_S = 60.0
EVENTS = scenario_from_dict({"name": "remote", "events": [
    {"at": 0, "id": 9001 + n, "starts_in": f"{60 + 40 * n}m", "duration_min": 30, "criticality": 3, "device_class": 1}
    for n in range(REMOTE_MESSAGES)]}).events


def answered(answers: list, issuer_event_id: int) -> bool:  # type: ignore[type-arg]
    return any(a.command == "report_event_status" and int(a.fields["issuer_event_id"]) == issuer_event_id
               for a in answers)


async def remote_replies(simulator: SimulatedHan) -> list[float]:
    """Milliseconds from each event the meter sends to the appliance's report that it was received."""
    meter = simulator.meter
    replies = []
    for spec in EVENTS:
        sent = time.perf_counter()
        await simulator.send_event(spec)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while not answered(meter.answers, spec["id"]):  # noqa: ASYNC110 - the meter records what it hears
                await asyncio.sleep(0.001)
        replies.append((time.perf_counter() - sent) * 1000)
    return replies


async def power_on_to_configured(
    measure_remote: bool = False,
) -> tuple[float, list[tuple[float, CommissioningStage]], list[float]]:
    """Seconds from the hub's start to "configured" after the test message, each stage on the way,
    and (``measure_remote``) the remote replies' milliseconds once configured."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(CONFIG)
        simulator = SimulatedHan(scenario_from_dict(SCENARIO))
        hub, _web = compose(read_config(folder), Path(tmp) / "data", simulator=simulator)
        stages: list[tuple[float, CommissioningStage]] = []
        done = asyncio.Event()
        started = time.perf_counter()

        def on_stage(stage: CommissioningStage) -> None:
            stages.append((time.perf_counter() - started, stage))
            if stage.stage is CommissioningStep.CONFIGURED and "test message" in stage.detail:
                done.set()

        unsubscribe = hub.bus.listen(CommissioningStage, on_stage)
        try:
            await hub.start()
            async with asyncio.timeout(CONFIGURED_TIMEOUT_S):
                await done.wait()
            configured_s = stages[-1][0]
            replies = await remote_replies(simulator) if measure_remote else []
        finally:
            unsubscribe()
            await hub.stop()
    return configured_s, stages, replies


async def main(runs: int) -> int:
    results, replies = [], []
    for run in range(runs):
        configured_s, stages, measured = await power_on_to_configured(measure_remote=run == runs - 1)
        results.append(configured_s)
        replies += measured
        print(f"Run {run + 1}: configured {configured_s:.2f} s after power-on")
        for at_s, stage in stages:
            print(f"  {at_s:6.2f} s  {stage.stage.value:<17} {stage.detail}")
    median = statistics.median(results)
    print(f"Power-on to configured with a registered install code, median of {runs}: {median:.2f} s"
          f" (max {max(results):.2f} s; target < 10 s)")
    remote_p99 = statistics.quantiles(replies, n=100, method="inclusive")[98]
    print(f"Remote HAN messages (LoadControlEvent -> ReportEventStatus received): p99 {remote_p99:.0f} ms,"
          f" max {max(replies):.0f} ms over {len(replies)} (limit {REMOTE_LIMIT_MS:g} ms)")
    provisioned_s, local_p99, entries = await provision_devices()
    print(f"{DEVICES} devices joined, discovered, provisioned and acknowledged in {provisioned_s:.1f} s"
          f" (target < {TARGET_S:g} s); {entries} log entries; local HAN round trips p99 {local_p99:.0f} ms"
          f" (limit {LOCAL_LIMIT_MS:g} ms)")
    print(f"configured_s={median:.2f} devices={DEVICES} provisioned_s={provisioned_s:.1f}"
          f" local_reply_p99_ms={local_p99:.0f} remote_reply_p99_ms={remote_p99:.0f}")
    within = (median < 10 and provisioned_s < TARGET_S and local_p99 < LOCAL_LIMIT_MS
              and remote_p99 < REMOTE_LIMIT_MS)
    return 0 if within else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().runs)))
