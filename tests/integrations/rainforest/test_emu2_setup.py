"""Setting an EMU-2 up: the ``emu2:`` section in ems.yaml, and the Commissioning page's "find and
test" (``Emu2Kind``: the serial ports listed, one read before the settings are saved)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from ems.cli import _demo_emu2, read_config, with_demo_meter
from ems.clock import FixedClock
from ems.errors import ConfigError
from integrations.rainforest import emu2
from integrations.simulator import load_scenario
from integrations.simulator.emu2 import METER_MAC, SimulatedEmu2, running

SCENARIO = Path(__file__).resolve().parents[3] / "config" / "scenarios" / "demo.yaml"
NOON = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


def config_with(tmp_path: Path, text: str):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text("site: {name: Test home, timezone: America/Los_Angeles}\n" + text)
    return read_config(folder)


def test_the_section_defaults_and_when_it_is_on(tmp_path):
    section = config_with(tmp_path, "emu2: {port: /dev/ttyACM0}\n").sections["emu2"]
    assert section == {"enabled": None, "port": "/dev/ttyACM0", "meter_id": "main", "stale_after_s": 60.0,
                       "interval_s": 60, "gap_s": 300.0, "poll_s": 30.0, "first_retry_s": 1.0, "max_retry_s": 30.0}
    assert emu2.enabled(section)
    assert not emu2.enabled(emu2.CONFIG_SCHEMA({}))
    assert not emu2.enabled(emu2.CONFIG_SCHEMA({"port": "/dev/ttyACM0", "enabled": False}))
    assert not emu2.enabled(emu2.CONFIG_SCHEMA({"enabled": True}))  # on, but no port to open


def test_a_bad_value_is_named_with_its_file_line_and_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, "emu2:\n  port: /dev/ttyACM0\n  interval_s: 5\n")
    assert "ems.yaml:4: emu2.interval_s" in str(err.value)


async def test_the_demo_reads_the_simulated_emu2_instead_of_the_zigbee_link(tmp_path):
    simulator = SimpleNamespace(scenario=load_scenario(SCENARIO), home_load_kw=0.0)
    demo = _demo_emu2(simulator, FixedClock(NOON), tmp_path)
    try:
        config = with_demo_meter(config_with(tmp_path, ""), demo)
        assert config.sections["zigbee_se"]["enabled"] is False
        assert emu2.enabled(config.sections["emu2"]) and config.sections["emu2"]["port"].startswith("/dev/")
    finally:
        await demo.stop()


@pytest.fixture
async def bridge():
    async with running(SimulatedEmu2(load_scenario(SCENARIO), FixedClock(NOON))) as emu2_:
        yield emu2_


async def test_find_lists_the_serial_ports_with_the_configured_one(bridge):
    kind = emu2.Emu2Kind([bridge.path])
    found = await kind.discover(timeout_s=5)
    assert bridge.path in [c.address for c in found]
    assert all(c.kind == "emu2" for c in found)
    assert not bridge.commands  # listing opens nothing


async def test_test_reads_the_meter_once_before_saving(bridge):
    probe = await emu2.Emu2Kind(clock=FixedClock(NOON)).probe({"port": bridge.path})
    assert probe.ok and probe.reason is None
    assert probe.hardware_id == METER_MAC
    assert probe.reading.demand_kw < 0  # exporting at noon
    assert (probe.price.price_per_kwh, probe.price.currency) == (0.29, "USD")
    details = dict(probe.details)
    assert details["Model"] == "Z105-2-EMU2" and details["Link strength"] == "100 %"
    assert [c[1] for c in bridge.commands][:1] == ["get_meter_list"]


async def test_a_silent_device_fails_with_words_the_customer_can_act_on(bridge):
    bridge.stall()
    probe = await emu2.Emu2Kind(timeout_s=1.5).probe({"port": bridge.path})
    assert not probe.ok and "did not answer as an EMU-2 does" in probe.reason


async def test_a_missing_port_or_a_bad_setting_fails_before_anything_is_opened(tmp_path):
    missing = await emu2.Emu2Kind().probe({"port": str(tmp_path / "ttyACM9")})
    assert not missing.ok and missing.reason.startswith("Cannot open")
    invalid = await emu2.Emu2Kind().probe({"port": "/dev/ttyACM0", "interval_s": 1})
    assert not invalid.ok and "not valid" in invalid.reason
    no_port = await emu2.Emu2Kind().probe({})
    assert not no_port.ok and "serial port" in no_port.reason


def test_the_kind_offers_the_port_field_and_the_configured_port(tmp_path):
    hub = SimpleNamespace(config=config_with(tmp_path, "emu2: {port: /dev/ttyACM3}\n"), clock=FixedClock(NOON))
    kind = emu2.source_kind(hub)
    assert (kind.kind, kind.title) == ("emu2", "Rainforest EMU-2 (USB)")
    assert kind.extra_ports == ["/dev/ttyACM3"]
    assert [f.name for f in kind.fields] == ["port"]


async def test_saved_on_the_commissioning_page_it_reads_the_meter(tmp_path, bridge):
    """The page saves the section (ems.meter_source.MeterSources) and ems.cli's starter runs it."""
    import asyncio

    from ems.cli import _SourceStarter
    from ems.model import LinkState, MeterLinkChanged
    from tests.hubs import started_hub

    async with started_hub(tmp_path, clock=bridge.clock) as hub:
        online = asyncio.Event()
        hub.bus.listen(MeterLinkChanged, lambda e: online.set() if e.state is LinkState.ONLINE else None)
        hub.meter_sources.starters["emu2"] = _SourceStarter(hub, "emu2", emu2)
        saved = await hub.meter_sources.save("emu2", {"port": bridge.path, "meter_id": "main"}, "owner")
        assert (saved.kind, saved.section["port"]) == ("emu2", bridge.path)
        try:
            async with asyncio.timeout(20):
                await online.wait()
            assert (await hub.meter_pins.get("main")).hardware_id == METER_MAC
        finally:
            await hub.meter_sources.close()
        assert "main" not in hub.meter_sources.running


async def test_testing_the_port_the_appliance_reads_answers_from_its_link(tmp_path, bridge):
    """A second reader of a serial port would take half its fragments: the test asks the running link."""
    import asyncio

    from ems.model import LinkState, MeterLinkChanged, MeterReading
    from tests.hubs import started_hub

    async with started_hub(tmp_path, clock=bridge.clock) as hub:
        read = asyncio.Event()
        hub.bus.listen(MeterReading, lambda e: read.set() if e.demand_kw is not None else None)
        states: list[LinkState] = []
        hub.bus.listen(MeterLinkChanged, lambda e: states.append(e.state))
        running = await emu2.async_setup(hub, {"port": bridge.path})
        try:
            async with asyncio.timeout(20):
                await read.wait()
            asked = len(bridge.commands)
            probe = await emu2.Emu2Kind().probe({"port": bridge.path})
            assert probe.ok and probe.hardware_id == METER_MAC and probe.reading.demand_kw < 0
            assert dict(probe.details)["Model"] == "Z105-2-EMU2"
            assert len(bridge.commands) == asked  # nothing asked of the bridge: the link's figures
        finally:
            await running.close()
        assert bridge.path not in emu2.RUNNING


async def test_a_port_another_program_holds_is_named_as_in_use(bridge):
    from integrations.rainforest import emu2_xml

    holder = await emu2_xml.Emu2Port.open(bridge.path)
    try:
        probe = await emu2.Emu2Kind().probe({"port": bridge.path})
        assert not probe.ok and "in use by another program" in probe.reason
    finally:
        await holder.close()
