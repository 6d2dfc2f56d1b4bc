"""What the Zigbee integrations' configuration sections share, and their start off the event loop.

Light on purpose (no zigpy import): ``zigbee_se`` and ``zigbee_home`` import it when the
configuration is validated, long before the Zigbee stack itself is needed.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import voluptuous as vol

RADIO_TYPES = ("virtual", "ezsp", "znp", "deconz")  # controller.py imports each one's library


def radio_schema(default_path: str) -> dict[vol.Marker, Any]:
    """The ``radio`` mapping of a section: a radio type, its path (``default_path`` if left out), serial settings."""
    return {
        vol.Optional("type", default="virtual"): vol.In(RADIO_TYPES, msg=f"expected one of {', '.join(RADIO_TYPES)}"),
        vol.Optional("path", default=default_path): vol.All(str, vol.Length(min=1)),
        vol.Optional("baudrate"): vol.All(int, vol.Range(min=1200)),
        vol.Optional("flow_control"): vol.In(["hardware", "software", None]),
    }


def with_overrides(
    section: dict[str, Any], *, radio_path: str | None = None, pcap: Path | None = None
) -> dict[str, Any]:
    """The section with the command line's radio path (a simulator's virtual HAN) and pcap file applied."""
    result = dict(section)
    if radio_path is not None:
        result["radio"] = {**section["radio"], "type": "virtual", "path": radio_path}
    if pcap is not None:
        result["pcap"] = str(pcap)
    return result


async def import_off_loop(module_name: str) -> ModuleType:
    """Import a module that pulls in the Zigbee stack, in a thread.

    That import is seconds of CPU work on a small box: off the event loop, the web answers meanwhile.
    """
    return await asyncio.to_thread(importlib.import_module, module_name)
