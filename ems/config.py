"""Configuration: YAML files in one directory, validated with voluptuous into frozen dataclasses.

Every problem is reported at once, each naming the file, the line, the key path, what was
expected and what was found, so a person can fix the file in one go. A configuration with any
problem never starts the appliance.

The core owns the ``site``, ``web``, ``store``, ``tariff`` and ``commissioning`` sections of ``ems.yaml``; each integration
hands in the schema of its own section (the composition root collects them).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from ems.errors import ConfigError, DocumentRefused

MAIN_FILE = "ems.yaml"
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def _default_config_dir() -> Path:
    if DEFAULT_CONFIG_DIR.is_dir():
        return DEFAULT_CONFIG_DIR
    return Path(__file__).resolve().parent / "default_config"  # installed wheel


# --- YAML with line numbers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedYaml:
    """A YAML document as plain data, plus the line of every key path in it."""

    path: Path
    data: Any
    lines: dict[tuple[Any, ...], int]
    empty: bool = False  # the text has no document at all (only comments or blank lines)

    def line_of(self, key_path: tuple[Any, ...]) -> int | None:
        """The line of the deepest known prefix of ``key_path`` (1-based)."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None


def load_yaml(path: Path) -> LoadedYaml:
    """Read one YAML file; a syntax error becomes a ConfigError naming file and line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the file: {err.strerror}"]) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:  # a file saved in another encoding: say where, as a syntax error
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8"]) from err
    return parse_yaml(text, path)


# libyaml's parser when present: ten times faster on a large file (a rules file), the same marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Limits on one YAML document. A configuration or rules file is a few kilobytes; these bound what a
# hostile document (from the Rules page or the API) can cost: aliases are shared nodes in the
# composed graph, but building plain data re-walks an alias every time it is used, so nine aliases
# of nine aliases of ... grow x9 per level (a 282-byte "billion laughs"), and an anchor that names
# itself never ends. The budget counts every node built, alias re-visits included.
MAX_YAML_BYTES = 256 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 100_000


def parse_yaml(text: str, path: Path) -> LoadedYaml:
    """Parse YAML text that came from ``path`` (a file, or a page's editor); errors as load_yaml.

    A document larger than MAX_YAML_BYTES, nested deeper than MAX_YAML_DEPTH or expanding to
    more than MAX_YAML_NODES values (aliases counted each time they are used) is a ConfigError
    naming the file and line, raised before the work grows with it.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_YAML_BYTES:
        raise DocumentRefused([f"{path}:1: the file is {size} bytes, larger than the {MAX_YAML_BYTES // 1024} KiB "
                           f"a configuration or rules file may be"])
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{where}: not valid YAML: {problem}"]) from err
    lines: dict[tuple[Any, ...], int] = {}
    if node is None:
        return LoadedYaml(path, {}, {(): 1}, empty=True)
    try:
        _measure(node, 0, {}, set())  # refuse a bomb before building anything of it
        data = _Builder(lines).build(node, (), 0)
    except _TooBig as err:
        raise DocumentRefused([f"{path}:{err.line}: {err}"]) from None
    except (yaml.YAMLError, ValueError) as err:
        raise ConfigError([f"{path}: {err}"]) from err
    return LoadedYaml(path, data, lines)


class _TooBig(ValueError):
    """The document passes a limit at ``line``: too deep, or too many values once aliases expand."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _measure(node: yaml.Node, depth: int, seen: dict[int, tuple[int, int]], open_: set[int]) -> tuple[int, int]:
    """(values, height) of ``node`` once its aliases are expanded, without expanding them.

    The composed graph shares an aliased node, so each distinct node is measured once (``seen``)
    and the work is the document's size, not its expansion's. A node inside itself (``open_``)
    or a path deeper than MAX_YAML_DEPTH stops at once, so this recursion stays shallow too.
    """
    line = node.start_mark.line + 1
    if id(node) in open_ or depth > MAX_YAML_DEPTH:
        raise _TooBig(line, f"nested more than {MAX_YAML_DEPTH} levels deep (or an alias inside itself); refused")
    known = seen.get(id(node))
    if known is None:
        if isinstance(node, yaml.MappingNode):
            children = [value for _key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        open_.add(id(node))
        size, height = 1, 0
        for child in children:
            child_size, child_height = _measure(child, depth + 1, seen, open_)
            size, height = size + child_size, max(height, child_height + 1)
        open_.discard(id(node))
        known = seen[id(node)] = (size, height)
    size, height = known
    if depth + height > MAX_YAML_DEPTH:
        raise _TooBig(line, f"nested more than {MAX_YAML_DEPTH} levels deep (or an alias inside itself); refused")
    if size > MAX_YAML_NODES:
        raise _TooBig(line, f"the document expands to more than {MAX_YAML_NODES} values (an alias used over and "
                            f"over, or a very large file); refused")
    return known


class _Builder:
    """Composed YAML nodes to plain data, recording the line of every key path, within the limits."""

    def __init__(self, lines: dict[tuple[Any, ...], int]) -> None:
        self.lines = lines
        self.nodes = 0  # values built so far, an alias counted at every use
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, key_path: tuple[Any, ...], depth: int) -> Any:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise _TooBig(line, f"the document expands to more than {MAX_YAML_NODES} values (an alias used "
                                f"over and over, or a very large file); refused")
        if depth > MAX_YAML_DEPTH:
            raise _TooBig(line, f"nested more than {MAX_YAML_DEPTH} levels deep (or an alias inside itself); "
                                f"refused")
        self.lines.setdefault(key_path, line)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                if key in result:
                    raise ValueError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
                self.lines[(*key_path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*key_path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*key_path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        """A key or a leaf value; a key that is itself a list or mapping is refused."""
        if not isinstance(node, yaml.ScalarNode):
            raise ValueError(f"line {node.start_mark.line + 1}: a key must be a plain value, not a list or mapping")
        return self._constructor.construct_object(node, deep=True)


# --- Error formatting -------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lookup(data: Any, key_path: tuple[Any, ...]) -> tuple[bool, Any]:
    for key in key_path:
        if isinstance(data, Mapping) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return False, None
    return True, data


def describe_invalid(
    loaded: LoadedYaml, error: vol.Invalid, prefix: tuple[Any, ...] = ()
) -> list[str]:
    """Turn voluptuous errors into one line each: file:line: key.path: problem (found ...)."""
    errors = error.errors if isinstance(error, vol.MultipleInvalid) else [error]
    problems = []
    for err in errors:
        key_path = (*prefix, *(p.schema if isinstance(p, vol.Marker) else p for p in err.path))
        line = loaded.line_of(key_path)
        where = f"{loaded.path}:{line}" if line else str(loaded.path)
        dotted = ".".join(str(k) for k in key_path) or "(top level)"
        message = err.error_message or str(err)
        if message.startswith("extra keys not allowed"):
            message = "unknown key (check the spelling; see config/ems.yaml for the known keys)"
        found, value = _lookup(loaded.data, key_path)
        suffix = f" (found {_describe(value)})" if found and not isinstance(value, dict) else ""
        problems.append(f"{where}: {dotted}: {message}{suffix}")
    return problems


# --- Core schema ------------------------------------------------------------------------


def _timezone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise vol.Invalid("unknown time zone, expected an IANA name such as 'America/Los_Angeles'") from err
    return str(value)


def _port(value: Any) -> int:
    return int(vol.All(vol.Coerce(int), vol.Range(min=0, max=65535, msg="expected a port number from 0 to 65535"))(value))


SITE_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="Home"): vol.All(str, vol.Length(min=1, max=80)),
        vol.Optional("timezone", default="UTC"): _timezone,
        vol.Optional("language", default="en"): vol.In(["en", "es", "zh"], msg="expected 'en', 'es' or 'zh'"),
        # °C or °F on the pages; by default the one of the time zone's country (°F in the US).
        vol.Optional("temperature_unit", default=None): vol.Any(None, vol.In(["C", "F"], msg="expected 'C' or 'F'")),
    }
)
WEB_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="127.0.0.1"): str,
        vol.Optional("port", default=8080): _port,
        # The address a wall display and a phone use to reach the appliance (the display links
        # and their QR code), when it is not the host above: "http://192.168.1.20:8080".
        vol.Optional("public_url", default=None): vol.Any(None, vol.All(str, vol.Match(
            r"^https?://[^/\s?#]+/?$", msg="expected an address such as 'http://192.168.1.20:8080'"))),
    }
)
STORE_SCHEMA = vol.Schema(
    {
        vol.Optional("url", default=None): vol.Any(None, vol.All(str, vol.Match(r"^(sqlite|postgresql)\+\w+://", msg="expected a database URL such as 'sqlite+aiosqlite:///path/ems.db' or 'postgresql+asyncpg://...'"))),
        vol.Optional("message_retention_hours", default=30 * 24): vol.All(
            vol.Coerce(float), vol.Range(min=12, msg="messages must be kept at least 12 hours (C6 4.2)")
        ),
        vol.Optional("reading_retention_days", default=800): vol.All(vol.Coerce(int), vol.Range(min=1)),
        # The database is kept within this size: the oldest samples and readings go first (hourly).
        vol.Optional("max_size_mb", default=None): vol.Any(None, vol.All(vol.Coerce(float), vol.Range(min=16)),
                                                           msg="expected a size in MB, at least 16 MB"),
    }
)

TARIFF_SCHEMA = vol.Schema(
    {
        vol.Optional("plan", default=None): vol.Any(None, vol.All(str, vol.Length(min=1))),
        vol.Optional("rates_file", default="rates.yaml"): vol.All(str, vol.Length(min=1)),
        vol.Optional("climate_zone", default=None): vol.Any(None, vol.Coerce(str)),
        vol.Optional("warning_threshold_cost", default=None): vol.Any(
            None, vol.All(vol.Coerce(float), vol.Range(min=0, msg="expected an amount >= 0"))
        ),
        vol.Optional("use_meter_prices", default=False): bool,
    }
)


DEMAND_RESPONSE_SCHEMA = vol.Schema(
    {
        vol.Optional("rules_file", default="rules.yaml"): vol.All(str, vol.Length(min=1)),
        # The EMS's DRLC client attributes (SE: StartRandomizationMinutes, DurationRandomizationMinutes).
        vol.Optional("start_randomization_min", default=30): vol.All(vol.Coerce(int), vol.Range(min=0, max=60)),
        vol.Optional("duration_randomization_min", default=0): vol.All(vol.Coerce(int), vol.Range(min=0, max=60)),
        vol.Optional("enrollment_group", default=0): vol.All(vol.Coerce(int), vol.Range(min=0, max=255)),
        vol.Optional("cycle_tick_s", default=15): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=600)),
        vol.Optional("telemetry_interval_s", default=300): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("device_reading_retention_days", default=60): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)


COMMISSIONING_SCHEMA = vol.Schema(
    {
        # Where the customer registers the appliance with the utility (C6 3.1 step 2): the
        # program's web page and phone, shown on the Commissioning page.
        vol.Optional("utility_contact", default={}): vol.Schema({
            vol.Optional("name", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=80))),
            vol.Optional("url", default=None): vol.Any(None, vol.All(str, vol.Match(r"^https?://\S+$")),
                                                       msg="expected a web address such as 'https://utility.example/register'"),
            vol.Optional("phone", default=None): vol.Any(None, vol.All(vol.Coerce(str), vol.Match(r"^[0-9+()./ -]{3,32}$")),
                                                         msg="expected a phone number such as '1-800-555-0100'"),
        }),
        # The number printed on the meter, which the utility asks for with the install code.
        vol.Optional("meter_number", default=None): vol.Any(None, vol.All(vol.Coerce(str), vol.Length(min=1, max=40))),
        # The self-test's limits (ems selftest and every start).
        vol.Optional("selftest_meter_timeout_s", default=60): vol.All(vol.Coerce(float), vol.Range(min=1, max=600)),
        vol.Optional("selftest_min_free_mb", default=200): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)


@dataclass(frozen=True, slots=True)
class UtilityContact:
    name: str | None = None
    url: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class CommissioningConfig:
    utility_contact: UtilityContact = UtilityContact()
    meter_number: str | None = None
    selftest_meter_timeout_s: float = 60.0
    selftest_min_free_mb: float = 200.0


@dataclass(frozen=True, slots=True)
class SiteConfig:
    name: str
    timezone: str
    language: str
    temperature_unit: str | None = None  # None: the time zone's country's (ems.local_text)


@dataclass(frozen=True, slots=True)
class WebConfig:
    host: str
    port: int
    public_url: str | None = None  # how the LAN reaches the appliance, when not host:port


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str | None
    message_retention_hours: float
    reading_retention_days: int
    max_size_mb: float | None = None  # None: no size limit (the time retentions only)


@dataclass(frozen=True, slots=True)
class TariffConfig:
    """The customer's rate: the active plan of a rates file (a utility's rate sheet).

    ``rates`` is the loaded file (an ``ems.tariff.RatesFile``), None when the file is absent
    and no plan is named. ``use_meter_prices``: a price the meter publishes replaces the rate
    sheet's energy price for its time span.
    """

    plan: str | None
    rates_file: Path
    climate_zone: str | None
    warning_threshold_cost: float | None
    use_meter_prices: bool = False
    rates: Any = None

    @property
    def active_plan(self) -> Any:
        """The active ``ems.tariff.RatePlan``, or None when no plan is configured."""
        if self.rates is None or self.plan is None:
            return None
        return self.rates.plans[self.plan]


def _load_tariff(config_dir: Path, main: LoadedYaml, raw: dict[str, Any]) -> TariffConfig:
    """Load the rates file the tariff section names; problems name the file and line."""
    from ems.tariff import load_rates  # ems.tariff builds on this module

    rates_file = Path(raw["rates_file"])
    if not rates_file.is_absolute():
        rates_file = config_dir / rates_file
    rates = None
    if rates_file.is_file():
        check = (raw["plan"],) if raw["plan"] else ()
        rates = load_rates(rates_file, raw["climate_zone"], check)
    if raw["plan"] is not None:
        line = main.line_of(("tariff", "plan"))
        if rates is None:
            raise ConfigError([f"{main.path}:{line}: tariff.rates_file: {rates_file} is missing"])
        if raw["plan"] not in rates.plans:
            known = ", ".join(sorted(rates.plans))
            raise ConfigError([f"{main.path}:{line}: tariff.plan: no plan {raw['plan']!r} in {rates_file} (plans: {known})"])
    return TariffConfig(
        plan=raw["plan"],
        rates_file=rates_file,
        climate_zone=raw["climate_zone"],
        warning_threshold_cost=raw["warning_threshold_cost"],
        use_meter_prices=raw["use_meter_prices"],
        rates=rates,
    )


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The whole validated configuration: core sections plus each integration's own."""

    config_dir: Path
    site: SiteConfig
    web: WebConfig
    store: StoreConfig
    sections: Mapping[str, Any] = field(default_factory=dict)
    tariff: TariffConfig | None = None
    commissioning: CommissioningConfig = CommissioningConfig()


def load_config(config_dir: Path, sections: Mapping[str, vol.Schema] | None = None) -> AppConfig:
    """Load and validate ``config_dir/ems.yaml``; raise ConfigError listing every problem.

    ``sections`` maps an integration's top-level key to its schema. A key that no schema
    claims is an error (a misspelt section would otherwise be silently ignored).
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError([f"{config_dir}: not a directory (expected a folder with {MAIN_FILE})"])
    main = config_dir / MAIN_FILE
    if not main.is_file():
        raise ConfigError([f"{main}: missing (every configuration folder needs {MAIN_FILE})"])
    loaded = load_yaml(main)
    if not isinstance(loaded.data, dict):
        raise ConfigError([f"{main}:1: (top level): expected a mapping of sections, found {_describe(loaded.data)}"])
    section_schemas: dict[str, vol.Schema] = {
        "site": SITE_SCHEMA,
        "web": WEB_SCHEMA,
        "store": STORE_SCHEMA,
        "tariff": TARIFF_SCHEMA,
        "demand_response": DEMAND_RESPONSE_SCHEMA,
        "commissioning": COMMISSIONING_SCHEMA,
    }
    section_schemas.update(sections or {})
    problems: list[str] = []
    validated: dict[str, Any] = {}
    for key in loaded.data:
        if key not in section_schemas:
            line = loaded.line_of((key,))
            known = ", ".join(sorted(section_schemas))
            problems.append(f"{main}:{line}: {key}: unknown section (known sections: {known})")
    for key, schema in section_schemas.items():
        raw = loaded.data.get(key)
        if raw is None:
            raw = {}
        try:
            validated[key] = schema(raw)
        except vol.Invalid as err:
            problems.extend(describe_invalid(loaded, err, (key,)))
    if problems:
        raise ConfigError(problems)
    tariff = _load_tariff(config_dir, loaded, validated.pop("tariff"))
    commissioning = validated.pop("commissioning")
    return AppConfig(
        config_dir=config_dir,
        site=SiteConfig(**validated.pop("site")),
        web=WebConfig(**validated.pop("web")),
        store=StoreConfig(**validated.pop("store")),
        sections={k: v for k, v in validated.items()},
        tariff=tariff,
        commissioning=CommissioningConfig(
            utility_contact=UtilityContact(**commissioning.pop("utility_contact")), **commissioning),
    )


def default_config_dir() -> Path:
    return _default_config_dir()
