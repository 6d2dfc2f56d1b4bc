"""The appliance and the simulated HAN on one SimulatedClock running 600 times faster than real time.

The simulated meter's script (a message ten simulated minutes in, an event half an hour in) is
played by the shared clock: what the appliance receives carries simulated instants, and half an
hour of simulated time has passed when the event arrives. Only simulated instants are asserted
(how long it took in real time is not; the suite's timeout ends a run whose time does not run fast).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from integrations.simulator.meter import ENDPOINT, TIME
from integrations.zigbee.se.codec import utc_time_to_datetime
from tests.e2e.conftest import FAST_SCENARIO, local_clock, running_appliance

SPEED = 600  # a simulated hour in six real seconds
SCENARIO: dict[str, Any] = {
    **FAST_SCENARIO,
    # Ticks a simulated minute apart (a tenth of a real second): the meter's day moves with the clock.
    "meter": {"report_interval": "1m", "profile_interval_min": 15},
    "messages": [{"at": "10m", "text": "Grid reliability alert: reduce use 4-9 PM.", "importance": "high"}],
    "events": [{"at": "30m", "id": 4201, "starts_in": "10m", "duration_min": 30, "criticality": 3,
                "device_class": 1, "cooling_offset_c": 2.0}],
}


async def test_the_simulator_and_the_appliance_share_one_clock_and_a_simulated_hour_passes_fast(tmp_path):
    clock = local_clock("14:00", speed=SPEED)
    start = clock.start

    async with running_appliance(tmp_path, SCENARIO, clock=clock) as appliance:
        hub, simulator = appliance.hub, appliance.simulator
        assert hub.clock is clock and hub.store.clock is clock
        assert simulator.clock is clock and simulator.meter.clock is clock and simulator.home.clock is clock
        views = await appliance.wait_until(lambda: [v for v in hub.control.events() if v.event.issuer_event_id == 4201],
                                           timeout_s=60, what="event 4201")  # the bound guards a hang only
        heard_by = clock()
        messages = [m.message for m in hub.state.messages.values() if m.message.text.startswith("Grid reliability")]
        meter_time = utc_time_to_datetime(int(simulator.meter.node.get_attribute(ENDPOINT, TIME, "time")))

    # The script ran on simulated time: the message ten simulated minutes in, the event half an hour in.
    (message,) = messages
    assert start + timedelta(minutes=10) <= message.start <= heard_by
    (sent,) = simulator.meter.events.values()
    event = views[0].event
    assert sent.start >= start + timedelta(minutes=40)  # sent 30 min in, starting "in 10 minutes"
    # ... of the meter's clock, which is the appliance's: the EMS has the same simulated start.
    assert abs(event.start - sent.start) <= timedelta(seconds=1)
    assert heard_by >= start + timedelta(minutes=30)
    # The meter's own Time attribute (what it tells the EMS) follows the same clock.
    assert meter_time is not None and meter_time >= start + timedelta(minutes=30)
