"""Start and stop the zigpy controller shared by every zigbee integration.

`radio_config` is zigpy's configuration plus `type`: `virtual` (our loopback radio),
`ezsp` (bellows), `znp` (zigpy-znp) or `deconz` (zigpy-deconz). Real radio libraries are
imported only when chosen; they come with the `radios` extra. Every app class is given
`SmartEnergyProfileMixin` so ZCL frames of the SE profile reach zigpy's clusters.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import voluptuous as vol
import zigpy.application
import zigpy.exceptions

from .nwk_lookup import NwkLookupMixin
from .radio import CONF_PCAP_PATH, DEFAULT_ZIGPY_CONFIG, RadioConfigError, VirtualRadioApplication
from .se_profile import SmartEnergyProfileMixin

LOGGER = logging.getLogger(__name__)

CONF_RADIO_TYPE = "type"
MAX_PERMIT_S = 254  # Mgmt_Permit_Joining_req: 0xFF would mean "forever"

_RADIO_CLASSES: dict[str, tuple[str, str]] = {
    "ezsp": ("bellows.zigbee.application", "bellows"),
    "znp": ("zigpy_znp.zigbee.application", "zigpy-znp"),
    "deconz": ("zigpy_deconz.zigbee.application", "zigpy-deconz"),
}
RADIO_TYPES = ("virtual", *_RADIO_CLASSES)


class RadioNotReady(ConnectionError):
    """The radio (or the virtual HAN) is not reachable now; retry later."""


def radio_class(radio_type: str) -> type[zigpy.application.ControllerApplication]:
    """The ControllerApplication class for a radio type, importing its library lazily."""
    if radio_type == "virtual":
        return VirtualRadioApplication
    if radio_type not in _RADIO_CLASSES:
        raise RadioConfigError(
            f"radio type {radio_type!r} is unknown; expected one of {', '.join(RADIO_TYPES)}"
        )
    module_name, package = _RADIO_CLASSES[radio_type]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise RadioConfigError(
            f"radio type {radio_type!r} needs the {package} package: install the radios extra"
            " (pip install 'premise-ems[radios]')"
        ) from err
    base = module.ControllerApplication
    return type(f"SmartEnergyAware{base.__name__}", (NwkLookupMixin, SmartEnergyProfileMixin, base), {})


async def start_controller(radio_config: dict[str, Any]) -> zigpy.application.ControllerApplication:
    """Create the controller and start its network; the caller owns it until stop_controller.

    Raises RadioConfigError (fix the configuration) or RadioNotReady (retry later).
    """
    config = dict(radio_config)
    radio_type = config.pop(CONF_RADIO_TYPE, None)
    if not isinstance(radio_type, str):
        raise RadioConfigError(
            f"radio {CONF_RADIO_TYPE!r} is missing; expected one of {', '.join(RADIO_TYPES)}"
        )
    app_class = radio_class(radio_type)
    try:
        app = app_class({**DEFAULT_ZIGPY_CONFIG, **config})
    except vol.Invalid as err:
        raise RadioConfigError(f"radio configuration is invalid: {err}") from err
    try:
        await app.startup(auto_form=True)  # a failed startup shuts itself down
    except (zigpy.exceptions.TransientConnectionError, ConnectionError, TimeoutError) as err:
        # zigpy's TransientConnectionError carries no text; the reason is its cause.
        reason = err.__cause__ if str(err) == "" and err.__cause__ is not None else err
        raise RadioNotReady(f"{radio_type} radio is not ready: {reason}") from err
    LOGGER.info("Zigbee controller started (%s radio)", radio_type)
    return app


async def start_radio(
    radio: Mapping[str, Any], pcap: Path | None = None, join: Mapping[str, Any] | None = None
) -> zigpy.application.ControllerApplication:
    """Start the controller for an integration's validated ``radio`` section, as start_controller.

    The section's ``type`` picks the radio and its other keys (path, baudrate, flow control) are
    zigpy's ``device`` settings; with ``pcap``, every frame is written to that file.
    """
    config: dict[str, Any] = {
        CONF_RADIO_TYPE: radio[CONF_RADIO_TYPE],
        "device": {k: v for k, v in radio.items() if k != CONF_RADIO_TYPE},
    }
    if pcap is not None:
        config[CONF_PCAP_PATH] = str(pcap)
    if join is not None and radio[CONF_RADIO_TYPE] == "virtual":
        # Joining another coordinator's network is the virtual radio's alone (zigpy issue 1709).
        config["coordinator_ieee"] = join["ieee"]
        config["join"] = {"install_code": join["install_code"], "device_type": join["device_type"]}
    return await start_controller(config)


async def stop_controller(app: zigpy.application.ControllerApplication) -> None:
    """Shut the controller down: its tasks, its devices' tasks, their clusters' replies and the radio link."""
    await app.shutdown()
    # zigpy answers some frames from a cluster's own task (a read's response, a default response)
    # and its shutdown leaves those be; they are the controller's too, so they end with it.
    replies = [task for device in list(app.devices.values()) for endpoint in device.endpoints.values()
               if hasattr(endpoint, "in_clusters")
               for cluster in (*endpoint.in_clusters.values(), *endpoint.out_clusters.values())
               for task in list(getattr(cluster, "_tasks", ())) if not task.done()]
    for task in replies:
        task.cancel()
    if replies:
        await asyncio.gather(*replies, return_exceptions=True)
    LOGGER.info("Zigbee controller stopped")


async def permit_join(app: zigpy.application.ControllerApplication, duration_s: int = 60) -> None:
    """Open joining on the whole network for `duration_s` seconds (0 closes it)."""
    if not 0 <= duration_s <= MAX_PERMIT_S:
        raise ValueError(f"permit-join duration {duration_s} s is outside 0-{MAX_PERMIT_S}")
    await app.permit(time_s=duration_s)
