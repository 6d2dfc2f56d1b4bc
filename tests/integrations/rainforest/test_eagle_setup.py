"""Setting the EAGLE up: the ``eagle`` section of ems.yaml, and the Commissioning page's find and test.

The probe reads the simulated EAGLE over real HTTP, once, with the settings a customer typed,
and answers with what it read or a reason the customer can act on; discovery reads a neighbour
table in the kernel's format.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import voluptuous as vol

from ems.clock import FixedClock
from ems.config import load_config
from ems.errors import ConfigError
from integrations.rainforest.eagle import CONFIG_SCHEMA, EagleSettings, EagleSourceKind, enabled
from integrations.simulator.eagle import SimulatedEagle, simulated_meter
from integrations.simulator.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedEagle]:
    clock = FixedClock(T0)
    eagle = SimulatedEagle(simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock),
                           clock=clock)
    await eagle.start()
    yield eagle
    await eagle.stop()


def section(eagle: SimulatedEagle, **changes: object) -> dict[str, object]:
    return {"host": eagle.host, "cloud_id": eagle.cloud_id, "install_code": eagle.install_code,
            "timeout_s": 2, **changes}


# -- the section ------------------------------------------------------------------------------


def test_the_section_is_on_when_enabled_or_when_an_address_is_given() -> None:
    assert not enabled(CONFIG_SCHEMA({}))
    assert enabled(CONFIG_SCHEMA({"cloud_id": "0A1B2C"}))
    assert not enabled(CONFIG_SCHEMA({"host": "192.168.1.40", "enabled": False}))
    assert enabled(CONFIG_SCHEMA({"enabled": True}))


def test_without_a_host_the_eagle_is_reached_by_its_mdns_name() -> None:
    settings = EagleSettings.from_section({"cloud_id": "0A1B2C", "install_code": "0123456789ABCDEF"})
    assert settings.host == "eagle-0a1b2c.local" and settings.install_code == "0123456789abcdef"
    assert (settings.poll_interval_s, settings.meter_id, settings.interval_s) == (15, "main", 60)


def test_an_enabled_section_needs_the_labels_cloud_id_and_install_code() -> None:
    with pytest.raises(vol.Invalid, match="Install Code"):
        EagleSettings.from_section({"cloud_id": "0a1b2c"})


def test_ems_yaml_errors_in_the_section_name_the_file_line_and_key(tmp_path: Path) -> None:
    from ems.cli import _integration_schemas

    (tmp_path / "ems.yaml").write_text("site: {name: Home, timezone: America/Los_Angeles}\n"
                                       "eagle:\n  host: 192.168.1.40\n  cloud_id: 0a1b2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, _integration_schemas())
    text = str(caught.value)
    assert "ems.yaml:4" in text and "eagle.cloud_id" in text and "6 hex digits" in text


# -- the probe (test before save) -------------------------------------------------------------


async def test_the_probe_reads_the_meter_once_with_the_settings_typed(sim: SimulatedEagle) -> None:
    probe = await EagleSourceKind(FixedClock(T0)).probe(section(sim))
    assert probe.ok and probe.reason is None
    assert probe.hardware_id == "0x0013500100aa3ce7"
    assert probe.reading.demand_kw == pytest.approx(sim.meter.demand_kw, abs=1e-6)
    assert probe.price.currency == "USD" and probe.price.price_per_kwh == pytest.approx(0.36)
    assert ("Meter connection", "Connected") in [(label, str(value)) for label, value in probe.details]


async def test_a_wrong_install_code_is_named_in_the_reason(sim: SimulatedEagle) -> None:
    probe = await EagleSourceKind(FixedClock(T0)).probe(section(sim, install_code="ffffffffffffffff"))
    assert not probe.ok and "Install Code" in str(probe.reason) and "label" in str(probe.reason)


async def test_nothing_listening_at_the_address_says_to_check_it() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = await EagleSourceKind(FixedClock(T0)).probe(
        {"host": f"127.0.0.1:{port}", "cloud_id": "0a1b2c", "install_code": "0123456789abcdef"})
    assert not probe.ok and "Nothing answered" in str(probe.reason)


async def test_a_stalled_eagle_is_told_to_be_power_cycled(sim: SimulatedEagle) -> None:
    sim.stall()
    probe = await EagleSourceKind(FixedClock(T0)).probe(section(sim, timeout_s=0.3))
    assert not probe.ok and "unplug it" in str(probe.reason)


async def test_an_eagle_that_has_not_joined_the_meter_says_so(sim: SimulatedEagle) -> None:
    sim.unjoin()
    probe = await EagleSourceKind(FixedClock(T0)).probe(section(sim))
    assert not probe.ok and "no reading from the meter yet" in str(probe.reason)


async def test_settings_with_a_typo_are_refused_before_anything_is_sent(sim: SimulatedEagle) -> None:
    probe = await EagleSourceKind(FixedClock(T0)).probe(section(sim, cloud_id="xyz"))
    assert not probe.ok and str(probe.reason).startswith("The Cloud ID is the 6 characters")
    assert sim.counters.requests == 0


# -- discovery --------------------------------------------------------------------------------


async def test_discovery_lists_the_rainforest_devices_the_box_has_seen(tmp_path: Path) -> None:
    table = tmp_path / "arp"
    table.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.168.1.1      0x1         0x2         a4:2b:b0:11:22:33     *        eth0\n"
        "192.168.1.40     0x1         0x2         d8:d5:b9:00:5e:7a     *        eth0\n")
    (candidate,) = await EagleSourceKind(FixedClock(T0), table, ["127.0.0.1"]).discover(1.0)
    assert (candidate.kind, candidate.address) == ("eagle", "192.168.1.40")
    assert "Cloud ID 005e7a" in str(candidate.label)


async def test_discovery_without_a_neighbour_table_finds_nothing(tmp_path: Path) -> None:
    assert await EagleSourceKind(FixedClock(T0), tmp_path / "missing", ["127.0.0.1"]).discover(1.0) == []


async def test_discovery_finds_an_eagle_announced_over_mdns(tmp_path: Path) -> None:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    from integrations.rainforest.eagle_mdns import cloud_id_of

    assert cloud_id_of("eagle-0A1B2C._http._tcp.local.") == "0a1b2c"
    assert cloud_id_of("printer-0a1b2c._http._tcp.local.") is None
    try:
        announcer = AsyncZeroconf(interfaces=["127.0.0.1"])
    except OSError as err:
        pytest.skip(f"no multicast here: {err}")
    eagle = ServiceInfo("_http._tcp.local.", "eagle-0a1b2c._http._tcp.local.", port=80, server="eagle-0a1b2c.local.",
                        addresses=[socket.inet_aton("127.0.0.1")])
    other = ServiceInfo("_http._tcp.local.", "printer._http._tcp.local.", port=631, server="printer.local.",
                        addresses=[socket.inet_aton("127.0.0.1")])
    try:
        await announcer.async_register_service(eagle)
        await announcer.async_register_service(other)
        found = await EagleSourceKind(FixedClock(T0), tmp_path / "missing", ["127.0.0.1"]).discover(3.0)
    finally:
        await announcer.async_close()
    if not found:
        pytest.skip("multicast on loopback does not loop back here")
    assert [(c.address, str(c.label)) for c in found] == [("127.0.0.1", "Rainforest EAGLE at 127.0.0.1 (Cloud ID 0a1b2c)")]


# -- ems demo --meter eagle -------------------------------------------------------------------


async def test_the_demo_eagle_gives_a_configuration_the_appliance_accepts_and_serves_it() -> None:
    from ems.cli import DEMO_METERS, DemoMeter, read_config, with_demo_meter
    from integrations.simulator.eagle import DemoEagle

    assert DEMO_METERS["eagle"] is not None
    clock = FixedClock(T0)
    meter = simulated_meter(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"), clock)
    demo = DemoEagle(lambda: meter, clock)
    config = with_demo_meter(read_config(REPO / "config"), DemoMeter("eagle", demo.sections, demo.start, demo.stop))
    assert enabled(config.sections["eagle"]) and config.sections["zigbee_se"]["enabled"] is False
    await demo.start()
    try:
        probe = await EagleSourceKind(clock).probe(dict(config.sections["eagle"]))
        assert probe.ok and probe.reading.summation_delivered_kwh == pytest.approx(meter.delivered_kwh, abs=1e-6)
    finally:
        await demo.stop()
