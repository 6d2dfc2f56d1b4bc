"""What the fuzzers found (bench/fuzz), each kept as the input that crashed, now refused cleanly.

Each input goes through the same target the fuzzer drove (the radio's path for a frame, the
loader for a file), which raises on a crash, on an exception logged at ERROR, or on a broken
invariant; a documented refusal comes back as its counted kind.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ems.config import load_config
from ems.errors import ConfigError
from ems.greenbutton import GreenButtonError, parse
from integrations.zigbee.se import commands
from integrations.zigbee_se.translate import OutOfRange, period_end

START = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def handler_input(frames, name: str, payload: bytes, flags: int = 0) -> bytes:
    """A frames-target input: the HANDLERS row named ``name`` (its schema struct), flags, TSN 9."""
    return bytes([frames.names.index(name), flags, 9]) + payload


@pytest.mark.parametrize("timebase", [1, 2, 3])
def test_a_period_of_a_24_bit_count_of_days_weeks_or_months_is_refused(timebase):
    """Found: PublishBlockPeriod with a duration of 0xFFFFFF weeks raised OverflowError in the handler."""
    with pytest.raises(OutOfRange, match="ends past the calendar"):
        period_end(START, 0xFFFFFF, timebase)


@pytest.mark.parametrize("name", ["publish_block_period", "publish_billing_period"])
def test_a_block_or_billing_period_past_the_calendar_is_a_counted_rejection(frames, name):
    fields = dict(provider_id=1, issuer_event_id=2, tariff_type=0)
    if name == "publish_block_period":
        payload = commands.PublishBlockPeriod(**fields, block_period_start_time=0, block_period_duration=0xFFFFFF,
                                              block_period_control=0, block_period_duration_type=0x02,
                                              tariff_resolution_period=0).serialize()
    else:
        payload = commands.PublishBillingPeriod(**fields, billing_period_start_time=0, billing_period_duration=0xFFFFFF,
                                                billing_period_duration_type=0x02).serialize()

    outcome = frames.run(handler_input(frames, name, payload))

    assert outcome == f"{name} rejected rejected: a period of N weeks from TIME ends past the calendar"


@pytest.mark.parametrize("formatting_known", [True, False])
@pytest.mark.parametrize("value", [b"\x00", b"\x42\x03abc", b"\x39\x00\x00\xc0\x7f"])  # no data, a string, NaN
def test_a_reading_reported_as_something_else_than_an_integer_is_a_counted_rejection(frames, value, formatting_known):
    """Found: a Report Attributes of CurrentSummationDelivered with type NoData raised TypeError when scaled
    (and, heard before the formatting was read, would have raised later, when the held reports are published)."""
    payload = b"\x00\x00" + value  # attribute 0x0000 CurrentSummationDelivered, then type and value

    outcome = frames.run(handler_input(frames, "Report_Attributes", payload, flags=0 if formatting_known else 0x04))

    assert outcome.startswith("Report_Attributes rejected rejected: attribute N reported as ")


def test_a_report_of_an_integer_reading_is_still_published(frames):
    payload = b"\x00\x00" + b"\x25" + (18251741).to_bytes(6, "little")  # uint48, as a meter reports it

    assert frames.run(handler_input(frames, "Report_Attributes", payload)) == "Report_Attributes accepted (1 answers)"


@pytest.mark.parametrize("name", ["ems.yaml", "rates.yaml"])
def test_a_configuration_file_that_is_not_utf8_is_a_config_error_naming_its_line(tmp_path: Path, name):
    """Found: a rates.yaml with a Latin-1 byte raised UnicodeDecodeError out of load_config."""
    (tmp_path / "ems.yaml").write_text("site: {timezone: UTC}\ntariff: {plan: A}\n")
    (tmp_path / "rates.yaml").write_text("plans:\n  A: {}\n")
    (tmp_path / name).write_bytes((tmp_path / name).read_bytes() + b"# caf\xe9\n")

    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)

    assert err.value.problems == [f"{tmp_path / name}:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"]


@pytest.mark.parametrize("text", ["?\n-", "? [a, b]\n: c\n", "{? {a: 1}: 2}\n"])
def test_a_yaml_key_that_is_a_list_or_mapping_is_refused_naming_its_line(rules_target, text):
    """Found: ``?\\n-`` (a complex key, a list) raised TypeError (unhashable) out of parse_yaml, for rules and
    configuration alike (the Rules page and /api/v1/rules/validate take any text)."""
    assert rules_target.run(text.encode()) == "rejected: line N: a key must be a plain value, not a list or mapping"


@pytest.mark.parametrize("element", [0x00, 0xFF])  # NoData, Unknown: types that take no bytes
def test_a_report_with_arrays_of_elements_of_no_size_is_malformed_not_millions_of_objects(frames, element):
    """Found: a Report Attributes whose value is an array of 20 arrays of 65535 NoData elements (65 bytes)
    made zigpy build 1.3 million objects (over 2 s on the event loop here; the fuzzer's own input, a set
    of sets, took 210 ms). Such elements have no meaning in ZCL: the frame is malformed."""
    inner = bytes([element]) + (0xFFFF).to_bytes(2, "little")
    payload = b"\x51\x51" + b"\x48\x48" + (20).to_bytes(2, "little") + inner * 20  # attribute 0x5151: an array

    outcome = frames.run(handler_input(frames, "Report_Attributes", payload))

    assert outcome.startswith("Report_Attributes rejected malformed: Report_Attributes: cannot decode N-byte payload"), outcome
    assert outcome.endswith("a ZCL collection "), outcome  # "... of 65535 elements of type 0x00, which has no size"


def test_an_array_of_sized_elements_is_still_decoded():
    from zigpy.zcl import foundation

    value, rest = foundation.TypeValue.deserialize(b"\x48\x20\x03\x00\x01\x02\x03\xaa")  # array of 3 uint8

    assert (list(value.value.value), rest) == ([1, 2, 3], b"\xaa")


ESPI = (Path(__file__).resolve().parents[1] / "ems" / "data" / "espi_two_directions.xml").read_bytes()


@pytest.mark.parametrize(("encoding", "why"), [("UTF-4", "unknown encoding: UTF-4"),
                                               ("EUC-JP", "multi-byte encodings are not supported")])
def test_an_espi_file_declaring_an_encoding_expat_cannot_read_is_refused(greenbutton, encoding, why):
    """Found: expat raised LookupError / ValueError out of parse for such an XML declaration."""
    data = ESPI.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode(), 1)

    assert greenbutton.run(data).startswith("rejected: the XML's declared encoding cannot be read (")
    with pytest.raises(GreenButtonError, match=f"line 1: the XML's declared encoding cannot be read \\({why}\\)"):
        parse(io.BytesIO(data), "main", "UTC")


def test_an_espi_link_that_is_not_a_url_is_compared_as_written(greenbutton):
    """Found: an entry's self link "https://u]tility.example/..." raised ValueError (Invalid IPv6 URL) in urlsplit."""
    data = ESPI.replace(b'rel="self" href="https://utility.example/DataCustodian/espi/1_1/resource/LocalTimeParameters/1"',
                        b'rel="self" href="https://u]tility.example/DataCustodian/espi/1_1/resource/LocalTimeParameters/1"')
    assert data != ESPI

    assert greenbutton.run(data) == greenbutton.run(ESPI) == "accepted ESPI XML (some intervals)"


def test_an_espi_interval_past_the_calendar_is_refused_naming_its_line(greenbutton):
    """Found by the soak's 10-minute run: an IntervalReading starting past year 9999 raised
    OverflowError (timestamp out of range) out of parse."""
    first = ESPI.index(b"<espi:start>", ESPI.index(b"<espi:IntervalReading>"))
    end = ESPI.index(b"</espi:start>", first)
    data = ESPI[:first] + b"<espi:start>99999999999999" + ESPI[end:]

    assert greenbutton.run(data).startswith("rejected: ")
    with pytest.raises(GreenButtonError, match="outside the years 1 to 9999"):
        parse(io.BytesIO(data), "main", "UTC")
