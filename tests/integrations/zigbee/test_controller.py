"""start_controller / stop_controller / permit_join over the virtual radio, and config errors."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from integrations.zigbee.controller import (
    RadioNotReady,
    permit_join,
    radio_class,
    start_controller,
    stop_controller,
)
from integrations.zigbee.han import VirtualHan
from integrations.zigbee.radio import RadioConfigError, VirtualRadioApplication, parse_radio_path

from .conftest import initialized_device


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_start_and_stop_virtual_controller(han: VirtualHan, tmp_path: Path) -> None:
    app = await start_controller({"type": "virtual", "device": {"path": han.radio_path}})
    try:
        assert isinstance(app, VirtualRadioApplication)
        await initialized_device(app)
        await permit_join(app, 30)
        with pytest.raises(ValueError, match="outside 0-254"):
            await permit_join(app, 255)
    finally:
        await stop_controller(app)
    assert not app.is_connected
    await han.wait_connected(False)


async def test_unreachable_han_is_not_ready() -> None:
    with pytest.raises(RadioNotReady, match="not reachable"):
        await start_controller(
            {"type": "virtual", "device": {"path": f"virtual://127.0.0.1:{free_port()}"}}
        )


@pytest.mark.parametrize(
    "path", ["/dev/ttyUSB0", "socket://127.0.0.1:6638", "virtual://127.0.0.1", "virtual://:1234"]
)
def test_bad_device_path_is_a_config_error(path: str) -> None:
    with pytest.raises(RadioConfigError, match="expected virtual://HOST:PORT"):
        parse_radio_path(path)
    with pytest.raises(RadioConfigError, match="expected virtual://HOST:PORT"):
        VirtualRadioApplication({"device": {"path": path}})


async def test_missing_or_unknown_radio_type_is_a_config_error() -> None:
    with pytest.raises(RadioConfigError, match="'type' is missing"):
        await start_controller({"device": {"path": "virtual://127.0.0.1:1"}})
    with pytest.raises(RadioConfigError, match="radio type 'xbee' is unknown"):
        radio_class("xbee")


async def test_invalid_zigpy_config_is_a_config_error() -> None:
    with pytest.raises(RadioConfigError, match="radio configuration is invalid"):
        await start_controller({"type": "virtual", "device": {}})


@pytest.mark.skipif(importlib.util.find_spec("bellows") is not None, reason="bellows is installed")
def test_missing_radio_library_says_to_install_the_extra() -> None:
    with pytest.raises(RadioConfigError, match="install the radios extra"):
        radio_class("ezsp")
