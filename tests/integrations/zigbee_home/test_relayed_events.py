"""An event relayed to an SE load controller once it has started ends at the event's end, not later."""

from __future__ import annotations

from datetime import timedelta

from ems.model import Criticality, DeviceClass, LoadControlEvent, utcnow

from .conftest import SPA


def _started_event(now, *, started_s: float, duration_min: int) -> LoadControlEvent:
    return LoadControlEvent(meter_id="main", issuer_event_id=4301, device_class=DeviceClass.SMART_APPLIANCE,
                            enrollment_group=0, start=now - timedelta(seconds=started_s),
                            duration_min=duration_min, criticality=Criticality.LEVEL_2, received_at=now)


async def test_an_event_relayed_after_its_start_ends_on_the_device_at_the_events_end(network, sim, clock):
    spa = sim.home.device("Spa heater")
    clock.now = utcnow()  # the device reads its own clock; the EMS's is the real one here
    event = _started_event(clock.now, started_s=30, duration_min=30)  # 29 min 30 s left
    await network.port.relay_event(SPA, event)
    assert spa.shedding
    sim.tick(clock.advance(seconds=(event.end - clock.now).total_seconds() - 1))
    assert spa.shedding  # one second before the end it still sheds
    sim.tick(clock.advance(seconds=1))
    assert not spa.shedding  # and at the end it stops: not up to 59 s later
    assert spa.statuses[-1] == (4301, 0x03)  # completed
