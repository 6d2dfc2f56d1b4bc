"""The ``ems`` command: the composition root, the only core module that wires in integrations.

    ems run -c DIR              run the appliance with the configuration in DIR
    ems demo                    run the appliance against the simulated meter (dashboard on :8080);
                                --start 2026-07-15T14:00 --speed 60: from that local time, 60x faster
    ems check-config -c DIR     validate a configuration, naming file, line and key path
    ems simulate-meter          run the simulated meter alone, for a separately started appliance
    ems import FILE             load interval history from a Green Button file (ESPI XML or CSV)
    ems han permit|devices|set|test|scan|log   provision the home's devices through the running appliance
    ems selftest -c DIR         check the store, the radios, the meter link, the clock and free disk

Each command imports what it needs when it runs: parsing the arguments (and ``ems --help``) loads
no Zigbee stack, database, numpy or web server, and ``check-config`` only the configuration's
schemas (tests/ems/test_cli_imports.py holds both to that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ems.config import AppConfig, WebConfig, default_config_dir, load_config
from ems.errors import ConfigError, EmsError

if TYPE_CHECKING:  # the hub brings the store (SQLAlchemy) and the bus: imported by the commands that run it
    from ems.clock import Clock
    from ems.hub import Hub
    from web.starting import StartingServer

_LOGGER = logging.getLogger("ems")


def _integration_schemas() -> dict[str, Any]:
    from integrations import ieee2030_5, mqtt, openadr, zigbee_home, zigbee_se
    from integrations.rainforest import eagle, emu2

    return {"zigbee_se": zigbee_se.CONFIG_SCHEMA, "zigbee_home": zigbee_home.CONFIG_SCHEMA,
            "openadr": openadr.CONFIG_SCHEMA, "mqtt": mqtt.CONFIG_SCHEMA, "eagle": eagle.CONFIG_SCHEMA,
            "emu2": emu2.CONFIG_SCHEMA, "ieee2030_5": ieee2030_5.CONFIG_SCHEMA}


def read_config(config_dir: Path) -> AppConfig:
    return load_config(config_dir, _integration_schemas())


def _default_data_dir() -> Path:
    return Path(os.environ.get("EMS_DATA_DIR", "data"))


SECRET_BEARING_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "zigpy")  # zigpy logs the network key at DEBUG


# Commands a person runs in a terminal and reads the answer of: the store's and the rate loader's
# INFO lines ("Store closed: ...") would be mixed into it; they are shown with -v.
TERMINAL_COMMANDS = ("import", "rates", "check-config")


def _configure_logging(verbose: bool, command: str | None = None) -> None:
    quiet = command in TERMINAL_COMMANDS
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("zigpy", "aiohttp.access", "apscheduler", "alembic", "openleadr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Held at WARNING even with -v: SQLAlchemy logs every statement and aiosqlite and asyncpg log
    # each call with its arguments (password hashes, CSRF tokens, session and token digests).
    for secret_bearing in SECRET_BEARING_LOGGERS:
        logging.getLogger(secret_bearing).setLevel(logging.WARNING)


class _Integration:
    """Adapts an integration's ``async_setup(hub, config)`` / ``close()`` to a hub component."""

    def __init__(self, hub: Hub, name: str, setup: Callable[[], Awaitable[Any]]) -> None:
        self._hub = hub
        self._name = name
        self._setup = setup
        self.instance: Any = None

    async def start(self) -> None:
        self.instance = await self._setup()
        self._hub.integrations[self._name] = self.instance

    async def stop(self) -> None:
        self._hub.integrations.pop(self._name, None)
        if self.instance is not None:
            await self.instance.close()
            self.instance = None


def compose(
    config: AppConfig,
    data_dir: Path,
    *,
    pcap: Path | None = None,
    simulator: Any = None,
    demo: bool = False,
    settle_quiet_s: float = 20.0,
    clock: Clock | None = None,
    starting: StartingServer | None = None,
    demo_meter: DemoMeter | None = None,
) -> tuple[Hub, Any]:
    """Build the appliance in start order: [the simulated HAN], the home network, the meter link.

    With a simulator, it starts before both networks (their radios connect to it) and stops
    after them, and the meter link's radio is pointed at the port it bound (the home network's
    radio at the simulated home's port). The hub runs on ``clock`` (real time by default); a
    simulator should be given the same one. With ``starting`` (already answering "starting" on
    the dashboard's port), the dashboard takes its sockets over and closes it.
    """
    from ems.bill_watch import BillWatch
    from ems.clock import REAL
    from ems.hub import Hub
    from integrations import zigbee_home, zigbee_se
    from web.app import WebServer

    hub = Hub(config, data_dir, REAL if clock is None else clock)
    hub.make_install_code = new_install_code
    hub.catalogs = catalogs
    se_config = config.sections["zigbee_se"]
    # The dashboard comes first: it answers (showing the link as connecting) while the
    # Zigbee stack is still loading, and it is the last thing to go on shutdown.
    web = WebServer(hub, config.web.host, config.web.port, demo=demo,
                    sockets=starting.sockets() if starting is not None else ())

    async def start_web() -> None:
        await web.start()
        if starting is not None:
            await starting.close()

    hub.add_component("web", start_web, web.stop)
    if simulator is not None:

        async def start_simulator() -> None:
            # The simulator plays the utility too: it has registered this appliance's install code.
            if hub.identity is not None and getattr(simulator, "auto_register", False):
                simulator.register_appliance(hub.identity.ieee, hub.identity.install_code)
            await simulator.start()

        hub.add_component("simulator", start_simulator, simulator.stop)
    if demo_meter is not None:  # a simulated bridge or 2030.5 meter, fed by the simulator's household
        hub.add_component(f"simulated {demo_meter.kind}", demo_meter.start, demo_meter.stop)

    async def setup_zigbee_se() -> Any:
        saved = await hub.meter_sources.saved_for(se_config["meter_id"])
        if saved is not None and saved.kind != "zigbee":
            _LOGGER.info("Meter %s is read through %s (set up on the Commissioning page): the ZigBee SE link "
                         "does not run", se_config["meter_id"], saved.kind)
            return _NotRunning()
        radio_path = f"virtual://127.0.0.1:{simulator.port}" if simulator is not None else None
        settings = zigbee_se.with_overrides(se_config, radio_path=radio_path, pcap=pcap)
        return await zigbee_se.async_setup(hub, settings)

    bill_watch = BillWatch(hub)
    hub.integrations["bill_watch"] = bill_watch
    hub.add_component("bill_watch", bill_watch.start, bill_watch.stop)
    hub.control = _demand_response(hub, config)
    hub.add_component("demand response", hub.control.start, hub.control.stop)
    from ems.provisioning import Provisioning

    hub.provisioning = Provisioning(hub)
    hub.add_component("provisioning", hub.provisioning.start, hub.provisioning.stop)

    async def setup_zigbee_home() -> Any:
        radio_path = f"virtual://127.0.0.1:{simulator.home_port}" if simulator is not None else None
        settings = zigbee_home.with_overrides(config.sections["zigbee_home"], radio_path=radio_path)
        return await zigbee_home.async_setup(hub, settings)

    home_network = _Integration(hub, "zigbee_home", setup_zigbee_home)
    hub.add_component("zigbee_home", home_network.start, home_network.stop)
    # The meter link after the home network: a device left controlled by an event that ended while
    # the appliance was down is put back as soon as its network is up, not after the meter's session.
    if se_config.get("enabled", True):  # off when another source reads the meter (ems demo --meter emu2)
        meter_link = _Integration(hub, "zigbee_se", setup_zigbee_se)

        async def start_meter_link() -> None:
            await meter_link.start()
            # A source saved later for this meter (the Commissioning page) stops the link first.
            hub.meter_sources.adopt(se_config["meter_id"], "zigbee", _Stopping(meter_link.stop))

        hub.add_component("zigbee_se", start_meter_link, meter_link.stop)
    from ems.selftest import RadioTarget, SelfTest, radio_targets

    def radios() -> list[RadioTarget]:  # the simulator's ports, once it listens
        if simulator is None:
            return radio_targets(config.sections)
        meter = [RadioTarget("meter network", "virtual", f"virtual://127.0.0.1:{simulator.port}")]
        return [*(meter if se_config.get("enabled", True) else []),
                RadioTarget("home network", "virtual", f"virtual://127.0.0.1:{simulator.home_port}")]

    selftest = SelfTest(hub, radios=radios)  # the same checks as `ems selftest`, at every start (hub.state.selftest)
    hub.integrations["selftest"] = selftest
    hub.add_component("self-test", selftest.start, selftest.stop)
    _add_eagle(hub, config)
    _add_openadr(hub, config)
    _add_emu2(hub, config)
    _add_ieee2030_5(hub, config)
    _add_meter_sources(hub)
    _add_mqtt(hub, config)
    settled = SettledFreeze(hub, settle_quiet_s)
    hub.integrations["settled_freeze"] = settled
    hub.add_component("settled freeze", settled.start, _nothing)
    return hub, web


def catalogs(language: str) -> Callable[[str], str]:
    """The web's message catalog of a language, for what delivers text outside a page (MQTT)."""
    from web.i18n import translations

    gettext: Callable[[str], str] = translations(language).ugettext
    return gettext


def new_install_code() -> bytes:
    """A new 16-byte install code and its CRC, for the appliance's identity (made once, ems.identity)."""
    from integrations.zigbee.install_code import InstallCode

    return bytes(InstallCode.generate().with_crc)


class _NotRunning:
    """An integration the configuration leaves off: nothing to close."""

    async def close(self) -> None:
        return None


class _Stopping:
    """Closes by calling a component's stop (which forgets the instance, so a second stop is a no-op)."""

    def __init__(self, stop: Callable[[], Awaitable[Any]]) -> None:
        self._stop = stop

    async def close(self) -> None:
        await self._stop()


# The kinds of meter source the Commissioning page can set up: kind -> the integration module, which
# exports CONFIG_SCHEMA, ``async_setup(hub, section)`` and ``source_kind(hub)`` (its MeterSourceKind).
METER_SOURCE_MODULES: dict[str, str] = {"eagle": "integrations.rainforest.eagle",
                                         "emu2": "integrations.rainforest.emu2",
                                         "ieee2030_5": "integrations.ieee2030_5"}


class _SourceStarter:
    """Validates a kind's section with its schema and starts it with its ``async_setup``."""

    def __init__(self, hub: Hub, kind: str, module: Any) -> None:
        self._hub, self._kind, self._module = hub, kind, module

    def validate(self, section: dict[str, Any]) -> dict[str, Any]:
        import voluptuous as vol

        try:
            return dict(self._module.CONFIG_SCHEMA(dict(section)))
        except vol.Invalid as err:
            where = ".".join(str(p) for p in err.path) or self._kind
            raise ValueError(f"{where}: {err.msg}") from err

    async def start(self, section: dict[str, Any]) -> Any:
        return await self._module.async_setup(self._hub, section)


def _add_meter_sources(hub: Hub) -> None:
    """Start the saved meter sources; the kinds are registered (imported off the loop) when first needed."""
    from integrations.zigbee.section import import_off_loop

    async def load() -> None:
        for kind, module_name in METER_SOURCE_MODULES.items():
            try:
                module = await import_off_loop(module_name)
            except ImportError as err:
                _LOGGER.warning("Meter sources of kind %s are unavailable: %s", kind, err)
                continue
            hub.meter_source_kinds[kind] = module.source_kind(hub)
            hub.meter_sources.starters[kind] = _SourceStarter(hub, kind, module)

    async def start() -> None:
        hub.meter_sources.loader = load
        await hub.meter_sources.start_saved()

    hub.add_component("meter sources", start, hub.meter_sources.close)


def _add_eagle(hub: Hub, config: AppConfig) -> None:
    """The Rainforest EAGLE's link when ems.yaml's ``eagle`` section is on; a source saved for its
    meter on the Commissioning page runs instead (and one saved later replaces it)."""
    from integrations.rainforest import eagle

    section = dict(config.sections.get("eagle") or {})
    if not eagle.enabled(section):
        return
    meter_id = str(section.get("meter_id") or "main")

    async def setup() -> Any:
        saved = await hub.meter_sources.saved_for(meter_id)
        if saved is not None:
            _LOGGER.info("Meter %s is read through %s (set up on the Commissioning page): ems.yaml's EAGLE "
                         "section does not run", meter_id, saved.kind)
            return _NotRunning()
        return await eagle.async_setup(hub, section)

    link = _Integration(hub, "eagle", setup)

    async def start() -> None:
        await link.start()
        hub.meter_sources.adopt(meter_id, eagle.KIND, _Stopping(link.stop))

    hub.add_component("eagle", start, link.stop)


def _add_emu2(hub: Hub, config: AppConfig) -> None:
    """A Rainforest EMU-2 on a serial port, when the ``emu2`` section is on (and no source is saved
    for its meter on the Commissioning page, which then reads it instead)."""
    from integrations.rainforest import emu2

    section = config.sections.get("emu2")
    if not emu2.enabled(section):
        return
    assert section is not None
    meter_id = section["meter_id"]
    link = _Integration(hub, "emu2", lambda: emu2.async_setup(hub, section))

    async def start() -> None:
        saved = await hub.meter_sources.saved_for(meter_id)
        if saved is not None:
            _LOGGER.info("Meter %s is read through %s (set up on the Commissioning page): ems.yaml's EMU-2 "
                         "does not run", meter_id, saved.kind)
            return
        await link.start()
        hub.meter_sources.adopt(meter_id, "emu2", _Stopping(link.stop))

    hub.add_component("emu2", start, link.stop)


def _demo_emu2(simulator: Any, clock: Clock, data_dir: Path) -> DemoMeter:
    """``ems demo --meter emu2``: a simulated EMU-2 on a pty, fed by the scenario's household (and the
    simulated home devices' load), read by the EMU-2 link in place of the ZigBee SE one."""
    from integrations.simulator.emu2 import SimulatedEmu2

    bridge = SimulatedEmu2(simulator.scenario, clock, extra_kw=lambda _at: simulator.home_load_kw)
    return DemoMeter("emu2", {"emu2": {"enabled": True, "port": bridge.open()}, "zigbee_se": {"enabled": False}},
                     bridge.start, bridge.stop)


class _ProgramIntegration:
    """An integration the Commissioning page may set up (``ems.program_setup``): it runs on the
    section saved there, else on ems.yaml's, when that turns it on; the page restarts it on a new one."""

    def __init__(self, hub: Hub, setup: Any, file_section: dict[str, Any],
                 start_on: Callable[[dict[str, Any]], Awaitable[Any]]) -> None:
        from ems.program_setup import RegisteredSetup

        self._hub = hub
        self._setup = setup
        self._start_on = start_on
        self._lock = asyncio.Lock()
        self.instance: Any = None
        self.registered = RegisteredSetup(setup, self.restart, lambda: dict(file_section))
        hub.program_setups[setup.name] = self.registered

    async def start(self) -> None:
        from ems.program_setup import section_in_force

        section, _saved = await section_in_force(self._hub.store, self.registered)
        await self._run(section)

    async def _run(self, section: dict[str, Any]) -> None:
        if not self._setup.enabled(section):
            return
        self.instance = await self._start_on(section)
        self._hub.integrations[self._setup.name] = self.instance

    async def stop(self) -> None:
        self._hub.integrations.pop(self._setup.name, None)
        instance, self.instance = self.instance, None
        if instance is not None:
            await instance.close()

    async def restart(self, section: dict[str, Any]) -> None:
        async with self._lock:
            await self.stop()
            await self._run(section)


def _add_openadr(hub: Hub, config: AppConfig) -> None:
    """The OpenADR VEN, when ``openadr.vtn_url`` (ems.yaml's or the Commissioning page's) names a VTN:
    after the DR core and the home network."""
    from integrations import openadr
    from integrations.openadr.setup import OpenAdrSetup, ven_settings

    async def start_on(section: dict[str, Any]) -> Any:
        settings = ven_settings(section, config.config_dir, hub.data_dir)
        assert settings is not None
        return await openadr.async_setup(hub, settings)

    ven = _ProgramIntegration(hub, OpenAdrSetup(config.config_dir), dict(config.sections.get("openadr") or {}),
                              start_on)
    hub.add_component("openadr", ven.start, ven.stop)


def _add_ieee2030_5(hub: Hub, config: AppConfig) -> None:
    """An IEEE 2030.5 meter on the LAN, when the ``ieee2030_5`` section names one (a source saved on
    the Commissioning page for the same meter id takes its place)."""
    from integrations import ieee2030_5

    section = config.sections.get("ieee2030_5")
    if not ieee2030_5.enabled(section):
        return
    assert section is not None
    link = _Integration(hub, "ieee2030_5", lambda: ieee2030_5.async_setup(hub, dict(section)))

    async def start() -> None:
        if await hub.meter_sources.saved_for(section["meter_id"]) is None:
            await link.start()
            hub.meter_sources.adopt(section["meter_id"], "ieee2030_5", _Stopping(link.stop))

    hub.add_component("ieee2030_5", start, link.stop)


def _add_mqtt(hub: Hub, config: AppConfig) -> None:
    """MQTT with Home Assistant discovery, when the ``mqtt`` section (ems.yaml's or the Commissioning
    page's) names a broker (last: it publishes what the others have, and stops first, saying offline
    before they go)."""
    from integrations import mqtt
    from integrations.mqtt.setup import MqttSetup

    async def start_on(section: dict[str, Any]) -> Any:
        return await mqtt.async_setup(hub, mqtt.settings_from_section(dict(section)))

    bridge = _ProgramIntegration(hub, MqttSetup(), dict(config.sections.get("mqtt") or {}), start_on)
    hub.add_component("mqtt", bridge.start, bridge.stop)


def _demand_response(hub: Hub, config: AppConfig) -> Any:
    """The DR component, with the customer's rules file and the rule engine's functions."""
    import rules
    from ems.dr.component import DemandResponse, rules_path
    from ems.dr.rulebook import RuleBook

    section = config.sections.get("demand_response")
    book = RuleBook(rules_path(config.config_dir, section), rules.parse_rules, rules.evaluate,
                    rules.check_conflicts)
    return DemandResponse(hub, book, section)


def freeze_startup_objects() -> None:
    """Move everything made while starting (the Zigbee stacks' many long-lived objects) out of the
    garbage collector's sight: a full collection scanning them paused the loop for up to 0.3 s,
    enough to delay a DR event's commands (bench/dr.py). Startup objects live as long as the process.
    """
    import gc

    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``): importing and
    starting leave megabytes freed but still resident, counted in the appliance's RSS for good."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back this way
        pass


class SettledFreeze:
    """Freezes the objects of the home's devices too, once they have joined: when no device has
    appeared for ``quiet_s`` (each device brings thousands of long-lived zigpy objects)."""

    def __init__(self, hub: Hub, quiet_s: float) -> None:
        self._hub = hub
        self._quiet_s = quiet_s
        self.done = asyncio.Event()

    async def start(self) -> None:
        self._hub.create_task(self._wait_and_freeze(), "settled-freeze")

    async def _wait_and_freeze(self) -> None:
        seen, still = -1, 0.0
        while still < self._quiet_s:
            await asyncio.sleep(0.5)
            count = len(self._hub.device_ports)
            still = still + 0.5 if count == seen and count > 0 else 0.0
            seen = count
        freeze_startup_objects()
        _LOGGER.debug("Froze the objects of %d devices out of the garbage collector's scans", seen)
        self.done.set()


async def _run_until_signalled(hub: Hub, ready: Callable[[], None] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    from ems import loop_probe

    probe = loop_probe.start_from_environment()  # a bench's probe of the loop (EMS_LOOP_PROBE)
    await hub.start()
    freeze_startup_objects()
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        _LOGGER.info("Shutting down")
        await hub.stop()
        await loop_probe.stop(probe)


async def _run(args: argparse.Namespace) -> int:
    config = read_config(Path(args.config))
    if args.host is not None or args.port is not None:
        config = replace(config, web=WebConfig(host=args.host or config.web.host,
                                               port=config.web.port if args.port is None else args.port))
    clock = demo_clock(args.start, args.speed, config.site.timezone, args.since)
    async with _starting(config.web) as starting:
        hub, web = compose(config, Path(args.data_dir), pcap=args.pcap, clock=clock, starting=starting)
        await _run_until_signalled(hub, lambda: _LOGGER.info("Ready: %s", web.url))
    return 0


# What ``compose`` and the hub's start import: loaded in a thread while the port says "starting".
# Not the Zigbee stack (zigpy, ~0.6 s): each network loads it in a thread when it starts, after the
# dashboard is up, as before; importing it here too put it before the store's opening and delayed
# the dashboard's own answer by a second (bench/footprint.py "start to its own API").
APPLIANCE_MODULES = ("ems.hub", "web.app", "ems.bill_watch", "rules", "ems.dr.component", "ems.dr.rulebook",
                     "integrations.zigbee_se", "integrations.zigbee_home")


@contextlib.asynccontextmanager
async def _starting(listen: WebConfig) -> AsyncIterator[StartingServer]:
    """The dashboard's port answering "starting" (web/starting.py) while the appliance loads.

    Binding first also reports a taken port at once, before a second of loading. The appliance's
    modules are imported in a thread so the loop answers meanwhile; the dashboard closes this
    server when it takes the sockets over (or it closes here if the start fails before).
    """
    import importlib

    from web.starting import StartingServer

    starting = StartingServer(listen.host, listen.port)
    try:
        await starting.start()
    except OSError as err:
        raise EmsError(f"cannot listen on {listen.host}:{listen.port}: {err.strerror}") from err
    try:
        await asyncio.to_thread(lambda: [importlib.import_module(name) for name in APPLIANCE_MODULES])
        yield starting
    finally:
        await starting.close()


@dataclass(frozen=True, slots=True)
class DemoMeter:
    """A simulated meter source for ``ems demo --meter KIND``: what it adds to the configuration
    (its section enabled, ``zigbee_se: {enabled: false}``), and its start and stop (a hub component
    that starts after the simulated HAN and before the integrations)."""

    kind: str
    sections: Mapping[str, Any]  # raw sections, validated by their schemas like ems.yaml's
    start: Callable[[], Awaitable[Any]]
    stop: Callable[[], Awaitable[Any]]


# ``ems demo --meter KIND``: KIND -> a maker of its simulated source, given the simulated HAN (its
# household feeds the figures), the demo's clock and data folder. "zigbee" is the simulated SE meter.
DemoMeterMaker = Callable[[Any, "Clock", Path], DemoMeter]
def _demo_eagle(simulator: Any, clock: Clock, data_dir: Path) -> DemoMeter:
    """A simulated EAGLE on loopback bridging the demo's simulated meter (integrations.simulator.eagle)."""
    from integrations.simulator.eagle import DemoEagle

    eagle = DemoEagle(lambda: simulator.han.meter, clock)
    return DemoMeter("eagle", eagle.sections, eagle.start, eagle.stop)


def _demo_ieee2030_5(simulator: Any, clock: Clock, data_dir: Path) -> DemoMeter:
    """A simulated 2030.5 meter over TLS on loopback, with the simulated HAN's registers and this
    appliance's certificate registered (integrations/simulator/ieee2030_5.py)."""
    from integrations.ieee2030_5.identity import identity_for
    from integrations.simulator.ieee2030_5 import demo_meter

    sections, start, stop = demo_meter(simulator, clock, identity_for(data_dir).cert_path.read_bytes(),
                                       keep_in=data_dir / "simulated_ieee2030_5_meter")
    return DemoMeter("ieee2030_5", sections, start, stop)


DEMO_METERS: dict[str, DemoMeterMaker | None] = {"zigbee": None, "eagle": _demo_eagle,
                                                  "emu2": _demo_emu2, "ieee2030_5": _demo_ieee2030_5}


def with_demo_meter(config: AppConfig, demo_meter: DemoMeter) -> AppConfig:
    """``config`` with the demo meter's sections (each validated by its schema, merged over ems.yaml's)."""
    schemas = _integration_schemas()
    sections = dict(config.sections)
    for name, raw in demo_meter.sections.items():
        merged = {**dict(sections.get(name) or {}), **dict(raw)} if name == "zigbee_se" else dict(raw)
        try:
            sections[name] = schemas[name](merged)
        except Exception as err:
            raise ConfigError([f"the simulated {demo_meter.kind} gave a bad {name} section: {err}"]) from err
    return replace(config, sections=sections)


async def _demo(args: argparse.Namespace) -> int:
    from integrations.simulator import load_scenario

    config = read_config(Path(args.config))
    config = replace(config, web=WebConfig(host=args.host, port=args.port))
    scenario = load_scenario(Path(args.scenario))
    clock = demo_clock(args.start, args.speed, config.site.timezone)
    simulator = _DeferredSimulator(scenario, clock)
    maker = DEMO_METERS.get(args.meter)
    demo_meter = maker(simulator, clock, Path(args.data_dir)) if maker is not None else None
    if demo_meter is not None:
        config = with_demo_meter(config, demo_meter)
    async with _starting(config.web) as starting:
        hub, web = compose(config, Path(args.data_dir), pcap=args.pcap, simulator=simulator, demo=True,
                           clock=clock, starting=starting, demo_meter=demo_meter)

        async def demo_owner() -> None:
            from ems.accounts import Accounts, ensure_demo_owner

            await ensure_demo_owner(Accounts(hub.store), hub.data_dir / "demo-api-token")

        hub.add_component("demo owner", demo_owner, _nothing)

        async def demo_history() -> None:
            # In the background: the appliance is up at once; the baselines fill in a few seconds later.
            hub.create_task(_seed_demo_history(hub, config, scenario), "demo-history")

        hub.add_component("demo history", demo_history, _nothing)

        def ready() -> None:
            from ems.clock import SimulatedClock

            _LOGGER.info("Demo ready: open %s (simulated meter on port %d)", web.url, simulator.port)
            if isinstance(clock, SimulatedClock):
                _LOGGER.info("Demo time: from %s, running %gx real time (now %s)",
                             clock.start.isoformat(timespec="minutes"), clock.speed,
                             clock().isoformat(timespec="seconds"))
            print(f"Dashboard: {web.url}", flush=True)

        await _run_until_signalled(hub, ready)
    return 0


DEMO_HISTORY_DAYS = 35


def demo_clock(start: datetime | None, speed: float, timezone: str, since: float | None = None) -> Clock:
    """The demo's clock: real time, or simulated time from ``start`` (naive: local time in
    ``timezone``) running ``speed`` times faster.

    With ``since`` (a Unix time), ``start`` is the simulated time at that real moment, not now:
    processes started at different moments (a meter, an appliance killed and started again)
    given the same three values share one simulated time.
    """
    from zoneinfo import ZoneInfo

    from ems.clock import REAL, SimulatedClock

    if start is None and speed == 1:
        return REAL
    if start is None:
        return SimulatedClock(REAL(), speed)
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(timezone))
    if since is not None:
        import time
        from datetime import timedelta

        start += timedelta(seconds=(time.time() - since) * speed)
    return SimulatedClock(start, speed)


async def _seed_demo_history(hub: Hub, config: AppConfig, scenario: Any) -> None:
    """Give a fresh demo five weeks of past usage (made from the scenario's household), once."""
    from datetime import timedelta

    from integrations.simulator.history import synthesize_intervals
    from integrations.simulator.household import Household

    meter_id = config.sections["zigbee_se"]["meter_id"]
    now = hub.clock()
    start, end = now - timedelta(days=DEMO_HISTORY_DAYS), now - timedelta(days=1)
    if await hub.store.intervals(meter_id, start, start + timedelta(days=2)):
        return  # seeded before (or real history): leave it
    household = Household.from_scenario(scenario.household, scenario.timezone)
    period = timedelta(minutes=scenario.meter["profile_interval_min"])
    readings = await asyncio.to_thread(synthesize_intervals, household, meter_id, start, end, period,
                                       scenario.home)
    added = await hub.store.add_intervals(readings)
    _LOGGER.info("Demo: seeded %d past intervals (%d days) from the simulated household", added, DEMO_HISTORY_DAYS - 1)


class _DeferredSimulator:
    """The simulated HAN, whose Zigbee-stack import runs in a thread when it starts.

    Importing zigpy takes about half a second of CPU; done off the event loop, the dashboard
    (started before it) already answers meanwhile.
    """

    def __init__(self, scenario: Any, clock: Clock) -> None:
        self._scenario = scenario
        self._clock = clock
        self._simulator: Any = None
        self._appliances: list[tuple[str, bytes]] = []

    @property
    def auto_register(self) -> bool:
        return bool(self._scenario.meter["register_appliance"])

    @property
    def scenario(self) -> Any:
        return self._scenario

    @property
    def home_load_kw(self) -> float:
        """What the simulated home devices draw now (0 before the simulator started)."""
        return float(self._simulator.home.load_kw) if self._simulator is not None else 0.0

    def register_appliance(self, ieee: str, install_code: bytes) -> None:
        """Register the appliance with the meter once it exists (see SimulatedHan.register_appliance)."""
        self._appliances.append((ieee, install_code))

    @property
    def han(self) -> Any:
        """The simulated HAN, once started (a demo meter source reads its meter)."""
        return self._simulator

    @property
    def port(self) -> int:
        return int(self._simulator.port)

    @property
    def home_port(self) -> int:
        return int(self._simulator.home_port)

    async def start(self) -> None:
        import importlib

        runner = await asyncio.to_thread(importlib.import_module, "integrations.simulator.runner")
        self._simulator = runner.SimulatedHan(self._scenario, clock=self._clock)
        for ieee, install_code in self._appliances:
            self._simulator.register_appliance(ieee, install_code)
        await self._simulator.start()

    async def stop(self) -> None:
        if self._simulator is not None:
            await self._simulator.stop()


async def _nothing() -> None:
    return None


async def _simulate_meter(args: argparse.Namespace) -> int:
    from integrations.simulator import SimulatedHan, load_scenario

    scenario = load_scenario(Path(args.scenario))
    clock = demo_clock(args.start, args.speed, scenario.timezone, args.since)
    from integrations.zigbee.trust_center import Registration

    try:
        registrations = [Registration.parse(text) for text in args.register]
    except ValueError as err:
        print(f"--register: {err}", file=sys.stderr)
        return 2
    simulator = SimulatedHan(scenario, port=args.port, pcap_path=args.pcap, home_port=args.home_port,
                             clock=clock, registrations=registrations)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    if args.log is not None:  # what the meter reported and heard, for bench/soak.py
        from integrations.simulator.history import SimulatorLog

        SimulatorLog(simulator, args.log).start()
    print(f"Simulated meter listening on virtual://127.0.0.1:{simulator.port}", flush=True)
    print(f"Simulated home devices listening on virtual://127.0.0.1:{simulator.home_port}", flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()
    return 0


async def _selftest(args: argparse.Namespace) -> int:
    """``ems selftest``: the store and the meter link started as ``ems run`` starts them, then the checks."""
    from ems.hub import Hub
    from ems.selftest import SelfTest, report_lines
    from integrations import zigbee_se

    config = read_config(Path(args.config))
    hub = Hub(config, Path(args.data_dir))
    hub.make_install_code = new_install_code
    meter_link = _Integration(hub, "zigbee_se", lambda: zigbee_se.async_setup(hub, config.sections["zigbee_se"]))
    hub.add_component("zigbee_se", meter_link.start, meter_link.stop)
    try:
        await hub.start()
    except EmsError as err:
        print(f"FAILED  Store: the appliance could not start: {err}", flush=True)
        return 1
    try:
        report = await SelfTest(hub).run(meter_timeout_s=args.timeout)
    finally:
        await hub.stop()
    for line in report_lines(report):
        print(line, flush=True)
    return 1 if report.failed_critically else 0


def _check_config(args: argparse.Namespace) -> int:
    config = read_config(Path(args.config))
    print(f"{config.config_dir}: configuration is valid")
    return 0


def _rates_import(args: argparse.Namespace) -> int:
    from ems.urdb import import_rate

    converted = import_rate(args.file, args.rates, args.name)
    print(f"Added the plan {converted.name} to {args.rates}.")
    for note in converted.notes:
        print(f"Note: {note}")
    print(f"To use it, set tariff.plan to {converted.name} in ems.yaml.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ems", description="Premise energy management system")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)
    default_config = str(default_config_dir())

    run = sub.add_parser("run", help="run the appliance")
    run.add_argument("-c", "--config", default=default_config, help="configuration folder")
    run.add_argument("--data-dir", default=str(_default_data_dir()), help="where data is kept")
    run.add_argument("--pcap", type=Path, help="write every HAN frame to this pcap file")
    run.add_argument("--host", help="dashboard address (overrides web.host)")
    run.add_argument("--port", type=int, help="dashboard port (overrides web.port)")
    _time_options(run, "the site's")

    demo = sub.add_parser("demo", help="run the appliance against the simulated meter")
    demo.add_argument("-c", "--config", default=default_config, help="configuration folder")
    demo.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    demo.add_argument("--host", default="127.0.0.1", help="dashboard address")
    demo.add_argument("--scenario", default=str(default_config_dir() / "scenarios" / "demo.yaml"))
    demo.add_argument("--pcap", type=Path, help="write every HAN frame to this pcap file")
    demo.add_argument("--data-dir", default=str(_default_data_dir() / "demo"))
    demo.add_argument("--meter", default="zigbee", choices=sorted(DEMO_METERS),
                      help="how the appliance reads the simulated meter (default: zigbee, the SE link)")
    _time_options(demo, "the site's")

    check = sub.add_parser("check-config", help="validate a configuration folder")
    check.add_argument("-c", "--config", default=default_config, help="configuration folder")

    from ems.importer import add_import_command

    add_import_command(sub)

    from ems.urdb import add_rates_command

    add_rates_command(sub, Path(default_config) / "rates.yaml")

    from ems.han_cli import add_han_command

    add_han_command(sub, _default_data_dir() / "demo")

    selftest = sub.add_parser(
        "selftest", help="check the store, the radios, the meter link, the clock and free disk",
        description="Check the appliance (while it is stopped: the meter link's radio serves one program at"
                    " a time). Exits 1 when a critical check fails.")
    selftest.add_argument("-c", "--config", default=default_config, help="configuration folder")
    selftest.add_argument("--data-dir", default=str(_default_data_dir()), help="where data is kept")
    selftest.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                          help="how long to wait for a session with the meter (default: the configuration's)")

    sim = sub.add_parser("simulate-meter", help="run the simulated meter alone")
    sim.add_argument("--scenario", default=str(default_config_dir() / "scenarios" / "demo.yaml"))
    sim.add_argument("--port", type=int, default=8811, help="TCP port the virtual radio connects to")
    sim.add_argument("--home-port", type=int, default=0,
                     help="TCP port of the home's own network (default: any free one; 8812 is the"
                          " configuration's default)")
    sim.add_argument("--pcap", type=Path, help="write every HAN frame to this pcap file")
    sim.add_argument("--log", type=Path, help="write what the meter reports and hears to this file (JSON lines)")
    sim.add_argument("--register", action="append", default=[], metavar="IEEE=INSTALLCODE[/DEVICE_TYPE]",
                     help="register an appliance with the meter, as the utility does with the install code"
                          " the customer gave them (repeatable; on top of the scenario's registrations)")
    _time_options(sim, "the scenario's")
    return parser


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a date and time such as 2026-07-15T14:00, found {text!r}") from err


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed > 0 or speed == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, found {text!r}")
    return speed


def _time_options(parser: argparse.ArgumentParser, zone: str) -> None:
    parser.add_argument("--start", metavar="WHEN", type=_instant,
                        help=f"start the simulated time at WHEN (ISO 8601, e.g. 2026-07-15T14:00; without"
                             f" an offset, {zone} local time) instead of now")
    parser.add_argument("--speed", type=_speed, default=1.0, metavar="N",
                        help="let simulated time run N times faster than real time (e.g. 60: an hour a minute)")
    parser.add_argument("--since", type=float, metavar="UNIX_TIME",
                        help="--start is the simulated time at this real moment (Unix seconds), not now:"
                             " processes started apart share one simulated time")


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's OpenBLAS would start a thread (and its buffers) per core for matrix work the appliance
    # never does: one is enough. Set before anything imports numpy.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose, args.command)
    try:
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "import":
            from ems.importer import run_import_command

            return asyncio.run(run_import_command(args, read_config))
        if args.command == "rates":
            return _rates_import(args)
        if args.command == "han":
            from ems.han_cli import run_han_command

            return run_han_command(args)
        if args.command == "selftest":
            return asyncio.run(_selftest(args))
        runner = {"run": _run, "demo": _demo, "simulate-meter": _simulate_meter}[args.command]
        return asyncio.run(runner(args))
    except ConfigError as err:
        print(f"Configuration error{'s' if len(err.problems) > 1 else ''}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except EmsError as err:
        print(f"ems: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
