"""Captures of the virtual HAN: both ends write the same frames, and Wireshark decodes them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from integrations.zigbee.han import VirtualHan
from integrations.zigbee.radio import VirtualRadioApplication
from tests.conftest import require_tool

from .conftest import METER_NWK, METERING, initialized_device, radio_config
from .pcap_reader import read_pcap

TSHARK = "/usr/bin/tshark"


async def capture_session(han: VirtualHan, tmp_path: Path) -> Path:
    """Interview, bind, configure reporting, read: a typical first minute with a meter."""
    app = VirtualRadioApplication(radio_config(han, tmp_path))
    await app.startup()
    try:
        metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
        await metering.bind()
        await metering.configure_reporting("instantaneous_demand", 0, 3600, 100)
        await metering.read_attributes(["current_summ_delivered"])
        await asyncio.sleep(0.05)  # let the first report arrive
    finally:
        await app.shutdown()
    return tmp_path / "radio.pcap"


async def test_radio_and_han_capture_the_same_frames(han: VirtualHan, tmp_path: Path) -> None:
    radio_pcap = await capture_session(han, tmp_path)
    radio_linktype, radio_records = read_pcap(radio_pcap)
    han_linktype, han_records = read_pcap(tmp_path / "han.pcap")
    assert radio_linktype == han_linktype == 230
    assert len(radio_records) == len(han_records) == han.counters["frames"] >= 15
    assert sorted(r[2] for r in radio_records) == sorted(r[2] for r in han_records)


async def tshark(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        TSHARK, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.tshark
async def test_wireshark_decodes_the_capture(han: VirtualHan, tmp_path: Path) -> None:
    require_tool(TSHARK, "decodes the virtual radio's pcap")
    path = await capture_session(han, tmp_path)
    _, records = read_pcap(path)
    fields = await tshark(
        "-r", str(path), "-T", "fields", "-E", "separator=,",
        "-e", "zbee_nwk.src", "-e", "zbee_aps.profile", "-e", "zbee_aps.cluster",
        "-e", "zbee_zcl.cmd.id", "-e", "_ws.malformed",
    )  # fmt: skip
    rows = [line.split(",") for line in fields.splitlines()]
    assert len(rows) == len(records)
    assert all(row[0] for row in rows), "every frame has a decoded NWK source"
    assert not any(row[4] for row in rows), "no frame is malformed"
    meter, metering = f"0x{METER_NWK:04x}", f"0x{METERING:04x}"
    assert [meter, "0x0109", metering, "0x0a"] in [row[:4] for row in rows]  # a report
    zdp = await tshark("-r", str(path), "-Y", "zbee_zdp")
    assert "Device Announcement" in zdp and "Simple Descriptor Response" in zdp
    assert "Malformed" not in await tshark("-r", str(path), "-V")
