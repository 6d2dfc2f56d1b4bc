"""Replay protection on the meter's network (ZigBee PRO §4.3.1.2, SE 1.x §5.4): a secured frame
recorded off the air and sent again authenticates like the original, so both ends keep each
sender's last NWK frame counter and drop a frame whose counter is not above it, counted and
logged once per sender. The frames replayed here are the real ones of a join and a read,
taken from the capture."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import zigpy.types as t

from integrations.zigbee import security, wire
from integrations.zigbee.han import VirtualHan
from integrations.zigbee.radio import VirtualRadioApplication

from .conftest import METER_IEEE
from .pcap_reader import read_pcap
from .test_join import CODE, NETWORK_KEY, RADIO_IEEE, joiner, meter_han, read_demand, trust_center

__all__ = ["meter_han", "trust_center"]  # fixtures shared with the join tests


def captured_from(pcap: Path, sender: t.EUI64) -> list[bytes]:
    """The secured frames ``sender`` put on the air, in order, as the capture holds them."""
    frames = []
    for *_, data in read_pcap(pcap)[1]:
        if not security.is_nwk_secured(data):
            continue  # the Transport-Key
        plain = security.unsecure(data, network_key=NETWORK_KEY,
                                  link_key_of={METER_IEEE: CODE.link_key, RADIO_IEEE: CODE.link_key})
        if plain.source == sender:
            frames.append(data)
    return frames


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the other end of a socket counts it
            await asyncio.sleep(0.01)


async def test_the_meter_drops_the_appliances_frames_sent_again(
    meter_han: VirtualHan, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = joiner(meter_han, tmp_path)
    await app.startup()
    try:
        assert await read_demand(app) == 1_500
        sent = captured_from(tmp_path / "radio.pcap", RADIO_IEEE)
        assert len(sent) >= 2
        caplog.set_level(logging.WARNING, logger="integrations.zigbee.han")
        # An attacker on the air repeats what the appliance sent: the last frame, then an older one.
        for number, data in enumerate((sent[-1], sent[0]), start=1):
            replay(app, wire.SecuredTx(tx_id=0xFF00 + number, data=data))
            await until(lambda n=number: meter_han.counters["replayed"] == n)
        assert meter_han.counters["security_failures"] == 0  # they authenticate: only the counter tells
        warnings = [r for r in caplog.records if "replayed" in r.getMessage()]
        assert len(warnings) == 1 and str(RADIO_IEEE) in warnings[0].getMessage()
        assert await read_demand(app) == 1_500  # the appliance's own new frames still go through
        assert meter_han.counters["replayed"] == 2
    finally:
        await app.shutdown()


async def test_the_appliance_drops_the_meters_frames_sent_again(
    meter_han: VirtualHan, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = joiner(meter_han, tmp_path)
    await app.startup()
    try:
        await read_demand(app)
        heard = captured_from(tmp_path / "han.pcap", METER_IEEE)
        assert len(heard) >= 2
        caplog.set_level(logging.WARNING, logger="integrations.zigbee.radio")
        for number, data in enumerate((heard[-1], heard[0], heard[-1]), start=1):
            hear(meter_han, wire.SecuredRx(data))
            await until(lambda n=number: app.counters["replayed"] == n)
        warnings = [r for r in caplog.records if "replayed" in r.getMessage()]
        assert len(warnings) == 1 and str(METER_IEEE) in warnings[0].getMessage()
        assert await read_demand(app) == 1_500  # the meter's new frames still count
        assert app.counters["replayed"] == 3
    finally:
        await app.shutdown()


async def test_a_new_join_starts_the_counters_afresh(meter_han: VirtualHan, tmp_path: Path) -> None:
    """An appliance that restarts counts from 1 again; the meter takes it once it has joined anew."""
    for _ in range(2):
        app = joiner(meter_han, tmp_path)
        await app.startup()
        try:
            assert await read_demand(app) == 1_500
        finally:
            await app.shutdown()
        await meter_han.wait_connected(False)
    assert meter_han.counters["replayed"] == 0


def replay(app: VirtualRadioApplication, message: wire.Message) -> None:
    """Put a frame on the air between the appliance and the meter (the radio's link to the HAN)."""
    writer = app._writer  # noqa: SLF001 - the air has no API: the test plays the attacker on it
    assert writer is not None
    wire.write_message(writer, message)


def hear(han: VirtualHan, message: wire.Message) -> None:
    """Put a frame on the air towards the appliance."""
    link = han._radio  # noqa: SLF001 - as above
    assert link is not None
    link.send(message)
