"""IEEE 2030.5 meters on the home network (Xcel's Launchpad with Itron Gen5 Riva): a meter source.

``identity.py`` makes and keeps the appliance's client certificate (its LFDI and SFDI are what the
customer registers with the utility), ``client.py`` is the mutual-TLS HTTPS client (the meter
pinned by its LFDI, one connection, session resumption, bounded retries), ``resources.py`` parses
the meter's XML, ``translate.py`` turns it into domain events, ``link.py`` polls the meter and
publishes them (and carries DR statuses and message confirmations back), ``discovery.py`` finds
meters by mDNS (``_smartenergy._tcp``) and ``source.py`` is the Commissioning page's meter-setup
kind (discover, probe).

The ``ieee2030_5:`` section of ems.yaml::

    ieee2030_5:
      url: https://192.168.1.40:8081   # or host: (and port:, 8081 by default)
      meter_lfdi: 9632ABA454EE609B3A328004DC1023D5E041C5B1   # optional pin; else the first meter seen is pinned
      meter_id: main
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

__all__ = ["CONFIG_SCHEMA", "KIND", "Settings", "async_setup", "enabled", "source_kind"]

KIND = "ieee2030_5"


def _lfdi(value: Any) -> str | None:
    if value is None:
        return None
    from integrations.ieee2030_5.identity import normal_lfdi

    try:
        return normal_lfdi(str(value))
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def _https_url(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().rstrip("/")
    if not text.startswith("https://") or len(text) <= len("https://"):
        raise vol.Invalid("expected an https:// address such as https://192.168.1.40:8081")
    return text


def _path(value: Any) -> str:
    text = str(value)
    if not text.startswith("/"):
        raise vol.Invalid("expected a path starting with '/'")
    return text


CONFIG_SCHEMA = vol.Schema(
    {
        # None: on when an address is set; false turns a configured meter off.
        vol.Optional("enabled", default=None): vol.Any(None, bool),
        vol.Optional("url", default=None): _https_url,
        vol.Optional("host", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=253))),
        vol.Optional("port", default=8081): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("dcap_path", default="/dcap"): _path,
        vol.Optional("meter_lfdi", default=None): _lfdi,
        vol.Optional("meter_id", default="main"): vol.All(str, vol.Match(
            r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'")),
        # The meter's pollRate is followed, within these bounds (seconds).
        vol.Optional("poll_min_s", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
        vol.Optional("poll_max_s", default=300.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=86400)),
        vol.Optional("stale_after_s", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("timeout_s", default=15.0): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=120)),
        vol.Optional("idle_s", default=20.0): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=600)),
        vol.Optional("retries", default=2): vol.All(int, vol.Range(min=0, max=5)),
        vol.Optional("first_retry_s", default=2.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("retry_max_s", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
        # Intervals made from the summation when the meter serves no interval data.
        vol.Optional("interval_s", default=900): vol.All(int, vol.Range(min=10, max=86400)),
        vol.Optional("gap_s", default=1800): vol.All(int, vol.Range(min=10, max=7 * 86400)),
        # How far back the meter's interval data is read on the first connection (hours).
        vol.Optional("history_h", default=24.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=24 * 31)),
    }
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated ``ieee2030_5`` section."""

    url: str
    dcap_path: str = "/dcap"
    meter_lfdi: str | None = None
    meter_id: str = "main"
    poll_min_s: float = 5.0
    poll_max_s: float = 300.0
    stale_after_s: float = 60.0
    timeout_s: float = 15.0
    idle_s: float = 20.0
    retries: int = 2
    first_retry_s: float = 2.0
    retry_max_s: float = 30.0
    interval_s: int = 900
    gap_s: int = 1800
    history_h: float = 24.0

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> Settings:
        data = CONFIG_SCHEMA(dict(section))
        from integrations.ieee2030_5.client import meter_url

        if not (data["url"] or data["host"]):
            raise vol.Invalid("ieee2030_5 needs the meter's url or host")
        return cls(
            url=meter_url(data), dcap_path=data["dcap_path"], meter_lfdi=data["meter_lfdi"],
            meter_id=data["meter_id"], poll_min_s=data["poll_min_s"],
            poll_max_s=max(data["poll_min_s"], data["poll_max_s"]), stale_after_s=data["stale_after_s"],
            timeout_s=data["timeout_s"], idle_s=data["idle_s"], retries=data["retries"],
            first_retry_s=data["first_retry_s"], retry_max_s=data["retry_max_s"], interval_s=data["interval_s"],
            gap_s=data["gap_s"], history_h=data["history_h"],
        )


def enabled(section: dict[str, Any] | None) -> bool:
    """Whether the section asks for a meter: ``enabled: true``, or an address without ``enabled: false``."""
    if not section:
        return False
    if section.get("enabled") is not None:
        return bool(section["enabled"]) and bool(section.get("url") or section.get("host"))
    return bool(section.get("url") or section.get("host"))


async def async_setup(hub: Any, section: dict[str, Any] | Settings) -> Any:
    """Start polling the meter (in the background, reconnecting until closed). Returns the link
    (``close()`` stops it)."""
    from integrations.ieee2030_5.link import MeterLink

    settings = section if isinstance(section, Settings) else Settings.from_section(section)
    link = MeterLink(hub, settings)
    await link.start()
    return link


def source_kind(hub: Any) -> Any:
    """The Commissioning page's meter-setup kind for 2030.5 meters (``ems.meter_source.MeterSourceKind``)."""
    from integrations.ieee2030_5.source import Ieee2030Kind

    return Ieee2030Kind(hub)
