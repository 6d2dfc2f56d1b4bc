"""The Commissioning page's meter setup for 2030.5 meters: find them by mDNS, test the settings before saving."""

from __future__ import annotations

import socket

import pytest

from ems.clock import FixedClock
from integrations.ieee2030_5.discovery import FoundMeter, browse, meter_of
from integrations.ieee2030_5.identity import identity_for, lfdi_grouped
from integrations.ieee2030_5.source import Ieee2030Kind
from integrations.simulator.ieee2030_5 import Ieee2030Meter
from tests.hubs import started_hub
from tests.integrations.ieee2030_5.conftest import NOON_PDT, demo_scenario


def test_an_itron_meters_announcement() -> None:
    # Itron Gen5 Riva (agent 3.2.50): instance itrondnsserver-<SFDI>, TXT txtvers=1 dcap=/dcap level=-S0 https=8081.
    found = meter_of("itrondnsserver-403184502454._smartenergy._tcp.local.", ["192.168.1.40"], 8081,
                     {b"txtvers": b"1", b"dcap": b"/dcap", b"level": b"-S0", b"https": b"8081"})
    assert found == FoundMeter("itrondnsserver-403184502454", "192.168.1.40", 8081, "/dcap", 403184502454)
    assert found.url == "https://192.168.1.40:8081"


def test_a_server_that_names_its_path_differently_or_not_at_all() -> None:
    assert meter_of("x._smartenergy._tcp.local.", ["fe80::1", "10.0.0.5"], 443, {b"path": b"sep2/dcap"}).dcap_path \
        == "/sep2/dcap"
    assert meter_of("x._smartenergy._tcp.local.", ["10.0.0.5"], 443, {}).dcap_path == "/dcap"
    assert meter_of("x._smartenergy._tcp.local.", [], 443, {}) is None  # no address: nothing to offer
    assert meter_of("x._smartenergy._tcp.local.", ["10.0.0.5"], None, {b"https": b"junk"}) is None


async def test_browsing_finds_a_meter_announced_over_mdns() -> None:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    try:
        announcer = AsyncZeroconf(interfaces=["127.0.0.1"])
    except OSError as err:
        pytest.skip(f"no multicast here: {err}")
    info = ServiceInfo("_smartenergy._tcp.local.", "itrondnsserver-403184502454._smartenergy._tcp.local.",
                       addresses=[socket.inet_aton("127.0.0.1")], port=8081,
                       properties={"txtvers": "1", "dcap": "/dcap", "https": "8081"}, server="meter.local.")
    try:
        await announcer.async_register_service(info)
        found = await browse(3.0, interfaces=["127.0.0.1"])
    finally:
        await announcer.async_close()
    if not found:
        pytest.skip("multicast on loopback does not loop back here")
    assert found[0].sfdi == 403184502454 and found[0].port == 8081


async def _probe(tmp_path, section, register=True):
    meter = Ieee2030Meter(demo_scenario(), FixedClock(NOON_PDT))
    async with started_hub(tmp_path) as hub:
        identity = identity_for(hub.data_dir)
        if register:
            meter.register_client(identity.cert_path.read_bytes())
        await meter.start()
        try:
            probe = await Ieee2030Kind(hub).probe({"url": meter.url, **section})
            return meter, identity, await hub.meter_pins.get("main"), probe
        finally:
            await meter.stop()


async def test_a_probe_reads_the_meter_once_and_names_it(tmp_path) -> None:
    meter, identity, pin, probe = await _probe(tmp_path, {})
    assert probe.ok and probe.reason is None
    assert probe.hardware_id == meter.lfdi
    assert probe.reading is not None and probe.reading.demand_kw is not None
    details = {label: str(value) for label, value in probe.details}
    assert details["TLS cipher"] == "ECDHE-ECDSA-AES128-CCM8"
    assert details["This appliance's LFDI"] == lfdi_grouped(identity.lfdi)
    assert "Prices" in details["Function sets"] and "Demand response" in details["Function sets"]
    assert pin is None  # a probe pins nothing


async def test_a_probe_of_an_unregistered_appliance_says_what_to_register(tmp_path) -> None:
    _meter, identity, _pin, probe = await _probe(tmp_path, {}, register=False)
    assert not probe.ok
    assert lfdi_grouped(identity.lfdi) in str(probe.reason) and "utility" in str(probe.reason)


async def test_a_probe_of_a_meter_other_than_the_one_named(tmp_path) -> None:
    meter, _identity, _pin, probe = await _probe(tmp_path, {"meter_lfdi": "1" * 40})
    assert not probe.ok and "different meter" in str(probe.reason)
    assert probe.hardware_id == meter.lfdi


async def test_a_probe_of_nothing_and_of_bad_settings(tmp_path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    async with started_hub(tmp_path) as hub:
        kind = Ieee2030Kind(hub)
        nothing = await kind.probe({"url": f"https://127.0.0.1:{port}", "timeout_s": 1})
        assert not nothing.ok and str(nothing.reason).startswith("Cannot reach the meter")
        bad = await kind.probe({"url": "http://meter"})
        assert not bad.ok and "https://" in str(bad.reason)
        assert not (await kind.probe({})).ok
