"""The EMU-2's serial XML on bytes: framing that survives what a serial line does, and field
decoding that refuses a bad field and keeps the rest (spec han-bridges.md §1.3-§1.5, §1.11)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.rainforest import emu2_xml as xml

# The spec's examples (§1.11), as a bridge writes them: pretty-printed, CRLF.
DEMAND_IMPORT = b"""<InstantaneousDemand>\r
  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>\r
  <MeterMacId>0x00135001002a3c4d</MeterMacId>\r
  <TimeStamp>0x30095aa8</TimeStamp>\r
  <Demand>0x0004d2</Demand>\r
  <Multiplier>0x00000001</Multiplier>\r
  <Divisor>0x000003e8</Divisor>\r
  <DigitsRight>0x03</DigitsRight>\r
  <DigitsLeft>0x06</DigitsLeft>\r
  <SuppressLeadingZero>Y</SuppressLeadingZero>\r
</InstantaneousDemand>\r
"""
DEMAND_EXPORT = DEMAND_IMPORT.replace(b"0x0004d2", b"0xfffff63c").replace(b"0x30095aa8", b"0x30095ab2")
SUMMATION = b"""<CurrentSummationDelivered>
  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>
  <MeterMacId>0x00135001002a3c4d</MeterMacId>
  <TimeStamp>0x30095aa8</TimeStamp>
  <SummationDelivered>0x00bc614e</SummationDelivered>
  <SummationReceived>0x0003d090</SummationReceived>
  <Multiplier>0x00000001</Multiplier>
  <Divisor>0x000003e8</Divisor>
  <DigitsRight>0x01</DigitsRight>
  <DigitsLeft>0x06</DigitsLeft>
  <SuppressLeadingZero>Y</SuppressLeadingZero>
</CurrentSummationDelivered>
"""
PRICE = b"""<PriceCluster>
  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>
  <MeterMacId>0x00135001002a3c4d</MeterMacId>
  <TimeStamp>0x30095aa8</TimeStamp>
  <Price>0x000004d2</Price>
  <Currency>0x0348</Currency>
  <TrailingDigits>0x04</TrailingDigits>
  <Tier>0x02</Tier>
  <RateLabel>Mid-Peak</RateLabel>
</PriceCluster>
"""
MESSAGE_AND_TIME = b"""<MessageCluster>
  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>
  <MeterMacId>0x00135001002a3c4d</MeterMacId>
  <TimeStamp>0x30095ae4</TimeStamp>
  <Id>0x00000007</Id>
  <Text>Peak event 3&amp;ndash;6 PM today. Please reduce use.</Text>
  <ConfirmationRequired>Y</ConfirmationRequired>
  <Confirmed>N</Confirmed>
  <Queue>Active</Queue>
</MessageCluster>
<TimeCluster>
  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>
  <MeterMacId>0x00135001002a3c4d</MeterMacId>
  <UTCTime>0x30095aa8</UTCTime>
  <LocalTime>0x30090648</LocalTime>
</TimeCluster>
"""
STREAM = DEMAND_IMPORT + DEMAND_EXPORT + SUMMATION + PRICE + MESSAGE_AND_TIME
AT = datetime(2025, 7, 15, 18, 30, tzinfo=UTC)


def fragments(*chunks: bytes) -> list[xml.Fragment | xml.Garbled]:
    splitter = xml.FragmentSplitter()
    return [event for chunk in chunks for event in splitter.feed(chunk)]


def values(data: bytes) -> list[xml.Value]:
    return [xml.decode(f).value for f in fragments(data) if isinstance(f, xml.Fragment)]


# -- framing -------------------------------------------------------------------------------


def test_the_spec_examples_come_out_as_six_fragments_in_order():
    assert [f.tag for f in fragments(STREAM)] == [
        "InstantaneousDemand", "InstantaneousDemand", "CurrentSummationDelivered", "PriceCluster",
        "MessageCluster", "TimeCluster"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 333])
def test_a_stream_read_in_pieces_of_any_size_gives_the_same_fragments(size):
    pieces = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert fragments(*pieces) == fragments(STREAM)


def test_junk_before_a_fragment_is_reported_once_and_the_fragment_kept():
    out = fragments(b"\x00\xffgarbage" + PRICE)
    assert isinstance(out[0], xml.Garbled) and out[0].reason == "bytes between fragments"
    assert [f.tag for f in out[1:]] == ["PriceCluster"]


def test_a_fragment_cut_off_by_a_reboot_costs_only_itself():
    cut = DEMAND_IMPORT[: len(DEMAND_IMPORT) // 2]
    out = fragments(cut, b"<DeviceInfo><ModelId>Z105-2-EMU2</ModelId></DeviceInfo>", PRICE)
    assert isinstance(out[0], xml.Garbled) and "cut off" in out[0].reason
    assert [f.tag for f in out[1:]] == ["DeviceInfo", "PriceCluster"]


def test_mismatched_and_stray_tags_are_garbled_and_the_stream_goes_on():
    out = fragments(b"</Demand><TimeCluster><UTCTime>0x1</UTCTime></Wrong>" + PRICE)
    assert [type(f) for f in out] == [xml.Garbled, xml.Garbled, xml.Fragment]


def test_a_fragment_that_never_closes_is_dropped_past_the_size_limit():
    splitter = xml.FragmentSplitter(max_fragment_bytes=256)
    out = splitter.feed(b"<InstantaneousDemand><Demand>" + b"0" * 300)
    assert isinstance(out[0], xml.Garbled) and "longer than" in out[0].reason
    assert splitter.feed(PRICE)[0].tag == "PriceCluster"


def test_an_unescaped_entity_is_text_not_an_error():
    [message] = values(b"<MessageCluster><Id>0x1</Id><Text>3&ndash;6 PM &amp; more</Text></MessageCluster>")
    assert message.text == "3\u20136 PM & more"


def test_code_page_1252_text():
    [info] = values(b"<DeviceInfo><Manufacturer>Caf\xe9 \x80</Manufacturer></DeviceInfo>")
    assert info.manufacturer == "Caf\u00e9 \u20ac"


# -- decoding --------------------------------------------------------------------------------


def test_demand_import_and_export_signed_in_kw():
    imported, exported = values(DEMAND_IMPORT + DEMAND_EXPORT)
    assert imported == xml.Demand("d8d5b90000001234", "00135001002a3c4d", AT, 1.234)
    assert exported.demand_kw == -2.5


def test_six_digit_demand_with_the_top_bit_set_is_24_bit_signed():
    [value] = values(DEMAND_IMPORT.replace(b"0x0004d2", b"0xfff63c"))
    assert value.demand_kw == -2.5


def test_a_zero_multiplier_or_divisor_counts_as_one():
    [value] = values(DEMAND_IMPORT.replace(b"<Divisor>0x000003e8", b"<Divisor>0x00000000"))
    assert value.demand_kw == 1234.0


def test_summation_delivered_and_received():
    [value] = values(SUMMATION)
    assert (value.delivered_kwh, value.received_kwh) == (12345.678, 250.0)


def test_price_is_exact_with_its_trailing_digits():
    [price] = values(PRICE)
    assert price == xml.Price("d8d5b90000001234", "00135001002a3c4d", AT, Decimal("0.1234"), 840, 4, 2, None,
                              "Mid-Peak")


def test_message_text_is_html_unescaped_once_and_the_clock_read():
    message, time = values(MESSAGE_AND_TIME)
    assert message.text == "Peak event 3\u20136 PM today. Please reduce use."
    assert (message.message_id, message.confirmation_required, message.confirmed) == (7, True, False)
    assert time.utc == AT and time.local == datetime(2025, 7, 15, 12, 30, tzinfo=UTC).replace(tzinfo=None)


def test_a_field_in_a_new_format_is_refused_and_the_rest_kept():
    changed = SUMMATION.replace(b"0x00bc614e", b"12345.678")
    decoded = xml.decode(fragments(changed)[0])
    assert decoded.value.delivered_kwh is None and decoded.value.received_kwh == 250.0
    assert decoded.value.timestamp == AT
    assert [(p.field, p.why) for p in decoded.problems] == [("SummationDelivered", "expected 0x-prefixed hex")]


def test_a_bad_divisor_refuses_what_it_scales_only():
    decoded = xml.decode(fragments(DEMAND_IMPORT.replace(b"<Divisor>0x000003e8", b"<Divisor>1000"))[0])
    assert decoded.value.demand_kw is None and decoded.value.timestamp == AT
    assert {p.field for p in decoded.problems} == {"Divisor", "Demand"}


def test_an_implausible_demand_is_refused():
    decoded = xml.decode(fragments(DEMAND_IMPORT.replace(b"0x0004d2", b"0x7fffffffff"))[0])
    assert decoded.value.demand_kw is None and decoded.problems


def test_block_prices_with_an_unbounded_last_block():
    data = (b"<BlockPriceDetail><MeterMacId>0x00135001002a3c4d</MeterMacId><NumberOfBlocks>0x02</NumberOfBlocks>"
            b"<Multiplier>0x1</Multiplier><Divisor>0x3e8</Divisor><Currency>0x0348</Currency>"
            b"<TrailingDigits>0x02</TrailingDigits><Threshold1>0x00055730</Threshold1><Price1>0x0000000c</Price1>"
            b"<Threshold2>0xffffffff</Threshold2><Price2>0x00000012</Price2></BlockPriceDetail>")
    [blocks] = values(data)
    assert blocks.thresholds_kwh == (350.0, None)
    assert blocks.prices == (Decimal("0.12"), Decimal("0.18"))


def test_meter_list_and_a_numeric_meter_type():
    meters, info = values(b"<MeterList><DeviceMacId>0xd8d5b90000001234</DeviceMacId><MeterMacId>0x00135001002A3C4D"
                          b"</MeterMacId><MeterMacId>0x00135001002a3c4e</MeterMacId></MeterList>"
                          b"<MeterInfo><MeterType>0x0000</MeterType></MeterInfo>")
    assert meters.meter_macs == ("00135001002a3c4d", "00135001002a3c4e")
    assert info.meter_type == "electric"


def test_device_info_keeps_neither_install_code_nor_link_key():
    [info] = values(b"<DeviceInfo><DeviceMacId>0xd8d5b90000001234</DeviceMacId><InstallCode>0x8a6e0e1cdd3c7a21"
                    b"</InstallCode><LinkKey>0x5a5a</LinkKey><ModelId>Z105-2-EMU2</ModelId>"
                    b"<DateCode>\xff\xff\xff\xff</DateCode></DeviceInfo>")
    assert info == xml.DeviceInfo("d8d5b90000001234", None, None, None, "Z105-2-EMU2", None)


def test_unknown_roots_and_warnings():
    unknown, warning = values(b"<FastPollStatus><Frequency>0x01</Frequency></FastPollStatus>"
                              b"<Warning><Text>Unknown command</Text></Warning>")
    assert unknown == xml.Unknown("FastPollStatus") and warning == xml.BridgeWarning("Unknown command")


def test_commands_as_aioraven_writes_them():
    assert xml.command("confirm_message", {"MeterMacId": xml.mac_arg("00135001002a3c4d"), "Id": xml.hex_arg(7, 8)}) == (
        b"<Command><Name>confirm_message</Name><MeterMacId>0x00135001002A3C4D</MeterMacId>"
        b"<Id>0x00000007</Id></Command>")
