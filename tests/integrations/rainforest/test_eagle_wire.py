"""The EAGLE's replies on bytes (eagle_wire) and what they mean in the domain (eagle_translate).

Each test is a shape or a value format the digest (han-bridges.md §2.3-2.4) says real units send,
or a reply that must be refused without costing the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.rainforest.eagle_translate import eui64, translate
from integrations.rainforest.eagle_wire import (
    BadReply,
    BadValue,
    Variable,
    device_query_command,
    parse_device_list,
    parse_device_query,
    quantity,
    unix_seconds,
)

NOW = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)


def reply(*variables: tuple[str, str, str], details: str = "", wrap: bool = True) -> bytes:
    rows = "".join(f"<Variable><Name>{n}</Name><Value>{v}</Value><Units>{u}</Units></Variable>" for n, v, u in variables)
    body = f"<Variables>{rows}</Variables>" if wrap else rows
    return (f"<Device><DeviceDetails><HardwareAddress>0x0013500100AA3CE7</HardwareAddress>"
            f"<LastContact>0x68769e28</LastContact><ConnectionStatus>Connected</ConnectionStatus>{details}"
            f"</DeviceDetails><Components><Component><Name>Main</Name>{body}</Component></Components></Device>").encode()


# -- the wire -------------------------------------------------------------------------------


def test_a_device_list_names_each_device_with_its_address_in_lower_case() -> None:
    body = (b"<DeviceList><Device><Name>Power Meter</Name><HardwareAddress>0x0013500100AA3CE7</HardwareAddress>"
            b"<ModelId>electric_meter</ModelId><ConnectionStatus>Connected</ConnectionStatus></Device>"
            b"<Device><HardwareAddress>0x00158d0000000001</HardwareAddress><ModelId>thermostat</ModelId></Device>"
            b"</DeviceList>")
    meter, other = parse_device_list(body)
    assert meter.hardware_address == "0x0013500100aa3ce7" and meter.is_meter and meter.connected
    assert not other.is_meter


def test_element_names_are_read_in_any_case_and_a_single_variable_is_a_list_of_one() -> None:
    body = (b"<device><devicedetails><hardwareaddress>0x0013500100aa3ce7</hardwareaddress></devicedetails>"
            b"<components><component><variables><variable><name>zigbee:InstantaneousDemand</name>"
            b"<value>0.5</value></variable></variables></component></components></device>")
    assert parse_device_query(body).variables["zigbee:InstantaneousDemand"].value == "0.5"


def test_a_reply_in_code_page_1252_is_read() -> None:
    body = reply(("zigbee:Message", "Caf\xe9 ferm\xe9", "")).decode().encode("cp1252")
    assert parse_device_query(body).variables["zigbee:Message"].value == "Café fermé"


@pytest.mark.parametrize(("body", "why"), [
    (b"", "empty"),
    (b"<html><body>502 Bad Gateway</body></html>", "expected Device"),
    (b"<Device><Components/></Device>", "without DeviceDetails"),
    (b"<Device><DeviceDetails><Name>x</Name></DeviceDetails></Device>", "without a HardwareAddress"),
    (b'<!DOCTYPE d [<!ENTITY a "aaaa">]><Device>&a;</Device>', "DOCTYPE"),
    (b"<Device><DeviceDetails>", "not XML"),
])
def test_a_body_that_is_not_a_query_reply_is_refused_by_name(body: bytes, why: str) -> None:
    with pytest.raises(BadReply, match=why):
        parse_device_query(body)


def test_the_query_command_asks_for_all_variables() -> None:
    assert device_query_command("0x0013500100aa3ce7") == (
        b"<Command><Name>device_query</Name><DeviceDetails><HardwareAddress>0x0013500100aa3ce7</HardwareAddress>"
        b"</DeviceDetails><Components><All>Y</All></Components></Command>")


@pytest.mark.parametrize(("value", "units", "kw"), [
    ("2853.662000", "kW", 2853.662), ("21.499 kW", "", 21.499), ("-2.500000", "kW", -2.5),
    ("1500 W", "", 1.5), ("1500", "W", 1.5), ("", "kW", None), ("invalid", "", None), (" 0.25 ", "", 0.25),
])
def test_demand_is_read_with_its_unit_beside_or_inside_the_value(value: str, units: str, kw: float | None) -> None:
    assert quantity(Variable("zigbee:InstantaneousDemand", value, units), "kW") == kw


@pytest.mark.parametrize(("value", "units", "why"), [
    ("0x0004d2", "kW", "hex"), ("12.5", "kWh", "unit"), ("lots", "kW", "not a number"), ("nan", "", "not a number"),
])
def test_a_value_in_a_format_of_unknown_scale_is_refused(value: str, units: str, why: str) -> None:
    with pytest.raises(BadValue, match=why):
        quantity(Variable("zigbee:InstantaneousDemand", value, units), "kW")


def test_times_come_in_hex_or_decimal_and_zigbee_time_zero_is_unset() -> None:
    assert unix_seconds("0x66d8e452", "LastContact") == 1725490258  # 2024-09-04 22:50:58 UTC (§2.3)
    assert unix_seconds("1725490258", "t") == 1725490258
    assert unix_seconds("946684800", "t") is None and unix_seconds("", "t") is None


# -- what it means --------------------------------------------------------------------------


def test_a_full_reply_becomes_a_reading_a_price_and_the_rate() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:InstantaneousDemand", "1.234000", "kW"),
        ("zigbee:CurrentSummationDelivered", "12345.678000", "kWh"),
        ("zigbee:CurrentSummationReceived", "250.000000", "kWh"),
        ("zigbee:Price", "0.1234", ""), ("zigbee:PriceCurrency", "USD", ""), ("zigbee:PriceTier", "2", ""),
        ("zigbee:PriceRateLabel", "Mid-Peak", ""), ("zigbee:PriceStartTime", "946684800", ""),
        ("zigbee:PriceDuration", "90", "min"),
        ("zigbee:Block1Threshold", "350.000000", "kWh"), ("zigbee:Block2Threshold", "", "kWh"),
        ("zigbee:CurrentBillingPeriodStart", "1781852400", ""), ("zigbee:CurrentBillingPeriodDuration", "43200", "min"),
    )), "main", NOW)
    assert values.problems == ()
    reading = values.reading
    assert (reading.demand_kw, reading.summation_delivered_kwh, reading.summation_received_kwh) == (1.234, 12345.678, 250.0)
    price = values.price
    assert (price.price_per_kwh_exact, price.currency, price.tier, price.rate_label) == (Decimal("0.1234"), "USD", 2, "Mid-Peak")
    assert price.start == NOW and (price.end - NOW).total_seconds() == 90 * 60
    assert values.rate.block_thresholds_kwh == (350.0,)
    assert (values.rate.billing_period_end - values.rate.billing_period_start).days == 30
    assert values.last_contact == datetime(2025, 7, 15, 18, 30, tzinfo=UTC)


def test_an_unsigned_32_bit_demand_passed_through_is_sign_extended() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:InstantaneousDemand", "4294964.796000", "kW"),
        ("zigbee:Multiplier", "1", ""), ("zigbee:Divisor", "1000", ""))), "main", NOW)
    assert values.reading.demand_kw == pytest.approx(-2.5)


def test_one_bad_value_is_refused_and_the_others_kept() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:InstantaneousDemand", "0x000004d2", "kW"),
        ("zigbee:CurrentSummationDelivered", "12345.678", "kWh"),
        ("zigbee:Price", "cheap", ""))), "main", NOW)
    assert [name for name, _why in values.problems] == ["zigbee:InstantaneousDemand", "zigbee:Price"]
    assert values.reading.demand_kw is None and values.reading.summation_delivered_kwh == 12345.678
    assert values.price is None


def test_empty_values_and_an_invalid_price_are_unknown_not_zero() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:InstantaneousDemand", "", "kW"), ("zigbee:CurrentSummationDelivered", "", "kWh"),
        ("zigbee:Price", "invalid", ""))), "main", NOW)
    assert values.reading is None and values.price is None and values.problems == ()


def test_a_raw_price_count_takes_its_trailing_digits() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:Price", "1234", ""), ("zigbee:PriceTrailingDigits", "4", ""),
        ("zigbee:PriceCurrency", "840", ""))), "main", NOW)
    assert values.price.price_per_kwh_exact == Decimal("0.1234") and values.price.currency == "USD"


def test_the_utilitys_message_is_html_unescaped_with_its_priority_and_confirmation() -> None:
    values = translate(parse_device_query(reply(
        ("zigbee:Message", "Peak event 3&amp;ndash;6 PM", ""), ("zigbee:MessageId", "7", ""),
        ("zigbee:MessagePriority", "High", ""), ("zigbee:MessageConfirmationRequired", "true", ""),
        ("zigbee:MessageDurationInMinutes", "120", "min"))), "main", NOW)
    message = values.message
    assert (message.message_id, message.text, int(message.importance), message.confirmation_required) == (
        7, "Peak event 3\u20136 PM", 2, True)


def test_a_meters_address_is_named_as_an_eui64() -> None:
    assert eui64("0x0013500100AA3CE7") == "00:13:50:01:00:aa:3c:e7"
