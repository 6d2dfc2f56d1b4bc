"""Wire types shared by the SE clusters (``clusters/_types.py``)."""

import pytest
from zigpy import types as t

from integrations.zigbee.se.clusters._types import Utf8String, limited_utf8_string

from ._hex import h


def test_utf8_string_prefix_is_the_byte_count() -> None:
    assert Utf8String("€").serialize() == h("03 E2 82 AC")


def test_zigpy_character_string_writes_the_character_count() -> None:
    # The reason Utf8String exists (digest §8 item 5): zigpy mis-frames non-ASCII.
    assert t.CharacterString("€").serialize() == h("01 E2 82 AC")


def test_utf8_string_round_trips_non_ascii_text() -> None:
    value, rest = Utf8String.deserialize(Utf8String("Ünïcødé ⚡").serialize() + b"tail")
    assert value == "Ünïcødé ⚡"
    assert rest == b"tail"


def test_utf8_string_decodes_bad_bytes_with_replacement_and_keeps_raw() -> None:
    value, _ = Utf8String.deserialize(h("02 C3 28"))
    assert value == "\ufffd("
    assert value.raw == h("C3 28")


def test_utf8_string_stops_at_nul_padding() -> None:
    value, rest = Utf8String.deserialize(h("04 48 69 00 00 FF"))
    assert value == "Hi"
    assert rest == h("FF")


def test_utf8_string_0xff_prefix_is_invalid_and_empty() -> None:
    value, rest = Utf8String.deserialize(h("FF 01"))
    assert value == ""
    assert value.invalid
    assert rest == h("01")
    assert value.serialize() == h("FF")


def test_utf8_string_shorter_than_its_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="claims 5 bytes"):
        Utf8String.deserialize(h("05 41"))


def test_utf8_string_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        Utf8String.deserialize(b"")


def test_limited_utf8_string_refuses_text_over_the_byte_limit() -> None:
    limited = limited_utf8_string(4)
    assert limited("abcd").serialize() == h("04 61 62 63 64")
    with pytest.raises(ValueError, match="limit is 4"):
        limited("ab€").serialize()  # 5 bytes


def test_fit_never_splits_a_multibyte_character() -> None:
    limited = limited_utf8_string(4)
    assert limited.fit("ab€") == "ab"
    assert limited.fit("abcdef") == "abcd"
