"""Install codes and their link keys, checked against the published vectors (spec §6.2, §9.1).

Vectors: zigpy's tests/test_zigbee_util.py (test_convert_install_code), reproduced in
spec/zigbee-se-1x.md §9.1; the 16-byte one is the example widely quoted as
"83FED3407A939723A5C639B26916D505 C3B5".
"""

from __future__ import annotations

import random

import pytest

from integrations.zigbee.install_code import InstallCode, crc_x25

VECTORS = [
    ("83FED3407A939723A5C639B26916D505", "C3B5", "66B6900981E1EE3CA4206B6B861C02BB"),
    ("1122334455667788", "4AF7", "41618FC0C83B0E14A589954B16E31466"),
]


@pytest.mark.parametrize(("code", "crc", "key"), VECTORS)
def test_crc_is_x25_little_endian_and_key_is_mmo_of_code_and_crc(code, crc, key):
    ic = InstallCode(bytes.fromhex(code))
    assert ic.crc == bytes.fromhex(crc)
    assert ic.with_crc == bytes.fromhex(code + crc)
    assert ic.link_key == bytes.fromhex(key)


def test_crc_value_of_the_quoted_example_is_0xb5c3_sent_low_byte_first():
    crc = crc_x25(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
    assert int.from_bytes(crc, "little") == 0xB5C3


def test_printed_form_is_hex_groups_of_four_with_the_crc():
    ic = InstallCode(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
    assert ic.printed() == "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    assert ic.hex() == "83FED3407A939723A5C639B26916D505C3B5"
    assert InstallCode.parse(ic.printed()) == ic


@pytest.mark.parametrize(
    "text",
    [
        "83FED3407A939723A5C639B26916D505",
        "83FED3407A939723A5C639B26916D505C3B5",
        "83fed3407a939723a5c639b26916d505c3b5",
        "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5",
        "83FE-D340-7A93-9723-A5C6-39B2-6916-D505-C3B5",
        "83:FE:D3:40:7A:93:97:23:A5:C6:39:B2:69:16:D5:05:C3:B5",
        "  0x83FED3407A939723A5C639B26916D505 C3B5\n",
    ],
)
def test_parse_accepts_the_usual_printed_forms(text):
    assert InstallCode.parse(text).code == bytes.fromhex("83FED3407A939723A5C639B26916D505")


def test_parse_checks_the_crc_when_given():
    with pytest.raises(ValueError, match="check digits do not match|do not match the rest"):
        InstallCode.parse("83FED3407A939723A5C639B26916D505C3B6")


def test_parse_eight_bytes_is_a_six_byte_code_only_when_its_crc_matches():
    six = InstallCode(bytes.fromhex("112233445566"))
    assert InstallCode.parse(six.hex()) == six
    assert InstallCode.parse("1122334455667788").code == bytes.fromhex("1122334455667788")
    assert InstallCode.parse("11223344556677884AF7").code == bytes.fromhex("1122334455667788")
    assert InstallCode.parse(six.hex(), with_crc=False).code == six.with_crc


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("83FE D340 7A93 XYZ0", "only the digits 0-9 and letters A-F; found 'X' 'Y' 'Z'"),
        ("83FED3407A939723A5C639B26916D50", "even number of hex digits; found 31"),
        ("83FED340", "found 4 bytes"),
        ("83FED3407A939723A5C639B26916D505C3B5AA", "found 19 bytes"),
    ],
)
def test_parse_says_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        InstallCode.parse(text)


def test_parse_with_crc_forced_rejects_a_length_without_room_for_one():
    with pytest.raises(ValueError, match="8, 10, 14 or 18 bytes"):
        InstallCode.parse("83FED3407A939723A5C639B26916D505", with_crc=True)


def test_code_lengths_outside_se_are_refused():
    with pytest.raises(ValueError, match="6, 8, 12 or 16 bytes"):
        InstallCode(bytes(10))


@pytest.mark.parametrize("size", [12, 16])
def test_generate_makes_codes_of_12_or_16_bytes_from_the_given_source(size):
    a = InstallCode.generate(random.Random(7), size)
    b = InstallCode.generate(random.Random(7), size)
    assert a == b
    assert len(a.code) == size
    assert InstallCode.parse(a.printed()) == a
    assert InstallCode.generate(random.Random(8), size) != a


def test_generate_defaults_to_16_bytes_from_the_os():
    assert len(InstallCode.generate().code) == 16
    with pytest.raises(ValueError, match="12 or 16"):
        InstallCode.generate(size=8)


def test_repr_never_shows_the_code_or_key():
    ic = InstallCode(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
    text = repr(ic) + str(ic)
    assert "83FE" not in text.upper()
    assert "66B6" not in text.upper()
