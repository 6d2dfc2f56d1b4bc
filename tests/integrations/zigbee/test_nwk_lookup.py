"""Finding a device by NWK address: the same answer as zigpy's walk, never a stale one."""

from __future__ import annotations

import pytest
import zigpy.types as t

from integrations.zigbee.radio import VirtualRadioApplication


def _app() -> VirtualRadioApplication:
    return VirtualRadioApplication({"device": {"path": "virtual://127.0.0.1:1"}})


def _ieee(n: int) -> t.EUI64:
    return t.EUI64.convert(f"00:0d:6f:00:00:00:{n // 256:02x}:{n % 256:02x}")


def test_a_device_is_found_by_its_nwk_address_among_hundreds():
    app = _app()
    devices = [app.add_device(_ieee(n), t.NWK(0x1000 + n)) for n in range(500)]
    for device in devices[::-1]:
        assert app.get_device(nwk=device.nwk) is device
        assert app.get_device(nwk=device.nwk) is device  # the remembered answer


def test_a_device_that_rejoined_under_a_new_address_is_found_there_and_not_under_the_old():
    app = _app()
    plug = app.add_device(_ieee(1), t.NWK(0x2001))
    assert app.get_device(nwk=0x2001) is plug
    plug.nwk = t.NWK(0x2002)
    assert app.get_device(nwk=0x2002) is plug
    with pytest.raises(KeyError):
        app.get_device(nwk=0x2001)


def test_a_removed_device_is_not_served_from_memory():
    app = _app()
    plug = app.add_device(_ieee(1), t.NWK(0x2001))
    assert app.get_device(nwk=0x2001) is plug
    del app.devices[plug.ieee]
    with pytest.raises(KeyError):
        app.get_device(nwk=0x2001)
    again = app.add_device(_ieee(1), t.NWK(0x2001))  # joins again: a new device object
    assert app.get_device(nwk=0x2001) is again


def test_lookups_by_ieee_are_zigpys_own():
    app = _app()
    plug = app.add_device(_ieee(7), t.NWK(0x3007))
    assert app.get_device(ieee=plug.ieee) is plug
    with pytest.raises(KeyError):
        app.get_device(ieee=_ieee(8))
