"""The meter number check (C6 1.4): the Metering cluster's MeterSerialNumber (0x0308, an octet string)
read as text, and compared with the number the customer wrote as people write it."""

from __future__ import annotations

import pytest

from integrations.zigbee_se.link import meter_number_text, same_meter_number


def test_the_octet_string_is_the_ascii_number_meters_write() -> None:
    assert meter_number_text(b"55512345") == "55512345"
    assert meter_number_text(b"SM-0042 \x00\x00") == "SM-0042"  # padding left off


def test_an_empty_or_unprintable_number_is_none_or_shown_in_hex() -> None:
    assert meter_number_text(b"") is None
    assert meter_number_text(b"\x00\x00") is None
    assert meter_number_text(b"\x12\x34\xff") == "1234FF"  # a BCD or binary serial, shown as hex


@pytest.mark.parametrize("written", ["55512345", "0055 5123-45", "555.123.45", " 55512345 "])
def test_the_same_number_written_another_way_is_the_same_meter(written: str) -> None:
    assert same_meter_number("55512345", written)


@pytest.mark.parametrize("other", ["55512346", "5551234", "555123450", "A55512345"])
def test_another_number_is_another_meter(other: str) -> None:
    assert not same_meter_number("55512345", other)


def test_letters_compare_without_case() -> None:
    assert same_meter_number("SM0042AB", "sm-0042-ab")
