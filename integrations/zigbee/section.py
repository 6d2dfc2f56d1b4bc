"""What the Zigbee integrations' configuration sections share, and their start off the event loop.

Light on purpose (no zigpy import): ``zigbee_se`` and ``zigbee_home`` import it when the
configuration is validated, long before the Zigbee stack itself is needed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import voluptuous as vol

RADIO_TYPES = ("virtual", "ezsp", "znp", "deconz")  # controller.py imports each one's library

# Imported by zigpy at module level for a feature the appliance turns off: jsonschema (~5 MB, 79
# modules) by ``zigpy.ota.providers``, which checks the OTA firmware indexes (OTA is disabled in
# radio.py). These names are bound to modules that run their code on first use instead.
UNUSED_BY_THE_APPLIANCE = ("jsonschema",)


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
    return await asyncio.to_thread(_import_zigbee_stack, module_name)


def _import_zigbee_stack(module_name: str) -> ModuleType:
    for name in UNUSED_BY_THE_APPLIANCE:
        defer_import(name)
    return importlib.import_module(module_name)


def defer_import(name: str) -> None:
    """Make ``import name`` bind a stand-in that imports the real module on its first use.

    Nothing of zigpy is changed: its ``import jsonschema`` finds the stand-in in ``sys.modules``;
    a feature turned on later (zigpy's OTA) reaches the real module through it, imported then.
    (``importlib.util.LazyLoader`` cannot do this: an ``import`` statement reads the module's
    ``__spec__``, which makes it load at once.) Left alone if the module is already imported or
    cannot be found.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    sys.modules[name] = _Deferred(name, spec)


class _Deferred(ModuleType):
    """A module not imported yet: any attribute it lacks imports the real one (thread-safe)."""

    _lock = threading.Lock()

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name, "imported on first use")
        self.__spec__ = spec

    def __getattr__(self, attr: str) -> Any:  # only for what it lacks: not __spec__, which import reads
        with self._lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
        return getattr(real, attr)
