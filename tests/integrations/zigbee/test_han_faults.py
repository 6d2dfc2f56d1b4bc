"""Issue 11 "Link faults": the virtual HAN drops, delays, duplicates and reorders application frames at
seeded rates, leaves ZDO alone, and freezes (nothing forwarded) until unfrozen."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from integrations.zigbee.air import AirFrame
from integrations.zigbee.han import REORDER_HOLD_S, LinkFaults, VirtualHan


def _frame(seq: int, profile_id: int = 0x0109) -> AirFrame:
    return AirFrame.single_hop(pan_id=0x1A62, nwk_src=0x1D2E, nwk_dst=0x0000, seq=seq, src_endpoint=1,
                               dst_endpoint=1, cluster_id=0x0702, profile_id=profile_id, payload=bytes([seq]))


def _routed(han: VirtualHan, frames: list[AirFrame]) -> list[int]:
    out: list[int] = []
    for frame in frames:
        out.extend(f.payload[0] for f in han._apply_faults(frame))
    return out


async def test_without_faults_every_frame_goes_on_once_in_order():
    han = VirtualHan()
    assert _routed(han, [_frame(i) for i in range(50)]) == list(range(50))


async def test_drops_come_at_the_configured_rate_and_repeat_with_the_seed():
    frames = [_frame(i % 256) for i in range(2000)]
    first = VirtualHan(faults=LinkFaults(drop=0.1, seed=3))
    again = VirtualHan(faults=LinkFaults(drop=0.1, seed=3))
    kept = _routed(first, frames)
    assert kept == _routed(again, frames)
    assert 150 <= first.counters["fault_dropped"] <= 250
    assert len(kept) == 2000 - first.counters["fault_dropped"]


async def test_duplicates_and_reorders_keep_every_frame():
    han = VirtualHan(faults=LinkFaults(duplicate=0.2, reorder=0.2, seed=1))
    out = _routed(han, [_frame(i) for i in range(200)])
    out += [f.payload[0] for f in han._release_held()]
    assert sorted(set(out)) == list(range(200))
    assert len(out) == 200 + han.counters["fault_duplicated"]
    assert han.counters["fault_duplicated"] > 10 and han.counters["fault_reordered"] > 10
    assert out != sorted(out)  # some arrive after a later one


async def test_a_held_frame_goes_out_alone_when_no_other_follows(monkeypatch):
    han = VirtualHan(faults=LinkFaults(reorder=1.0))
    routed: list[AirFrame] = []
    monkeypatch.setattr(han, "_router_task", object())  # as if started
    monkeypatch.setattr(han, "_route", routed.append)
    assert han._apply_faults(_frame(1)) == []
    await asyncio.sleep(REORDER_HOLD_S + 0.2)
    assert [f.payload[0] for f in routed] == [1]


async def test_delayed_frames_arrive_later(monkeypatch):
    han = VirtualHan(faults=LinkFaults(delay=1.0, delay_s=0.05))
    routed: list[AirFrame] = []
    monkeypatch.setattr(han, "_router_task", object())
    monkeypatch.setattr(han, "_route", routed.append)
    assert han._apply_faults(_frame(7)) == []
    await asyncio.sleep(0.3)
    assert [f.payload[0] for f in routed] == [7] and han.counters["fault_delayed"] == 1


async def test_zdo_is_never_faulted():
    han = VirtualHan(faults=LinkFaults(drop=1.0))
    assert _routed(han, [_frame(i, profile_id=0x0000) for i in range(20)]) == list(range(20))


async def test_a_frozen_han_forwards_nothing_until_unfrozen():
    han = VirtualHan()
    han.freeze()
    assert _routed(han, [_frame(i) for i in range(5)]) == []
    han.unfreeze()
    assert _routed(han, [_frame(9)]) == [9]
    assert han.counters["fault_frozen"] == 5


@pytest.mark.parametrize("bad", [{"drop": 1.5}, {"duplicate": -0.1}, {"delay_s": -1}])
def test_rates_outside_0_to_1_are_refused(bad):
    with pytest.raises(ValueError):
        LinkFaults(**bad)


def test_a_node_drops_the_airs_copy_of_a_frame_it_got_like_an_aps_duplicate_table():
    from tests.integrations.zigbee.conftest import make_meter

    node = make_meter()
    frame = AirFrame.single_hop(pan_id=0x1A62, nwk_src=0x0000, nwk_dst=node.nwk, seq=9, src_endpoint=1,
                                dst_endpoint=1, cluster_id=0x0702, profile_id=0x0109, payload=b"\x00\x09\x00\x00\x00")
    node.receive(frame)
    node.receive(frame)  # the air's copy
    assert node.counters["rx"] == 1 and node.counters["rx_duplicate"] == 1
    node.receive(dataclasses.replace(frame, aps_counter=10))  # a resend is a new frame
    node.forget_duplicates()  # a new radio: its counters start again
    node.receive(frame)
    assert node.counters["rx"] == 3
