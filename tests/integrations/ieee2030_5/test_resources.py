"""The 2030.5 resource parsers: the standard's shapes read, a bad field rejected alone, hostile XML refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.ieee2030_5 import resources as res

TIME = b"""<Time xmlns="urn:ieee:std:2030.5:ns" href="/tm" pollRate="900">
  <currentTime>1752604200</currentTime>
  <dstEndTime>1762070400</dstEndTime>
  <dstOffset>3600</dstOffset>
  <dstStartTime>1741510800</dstStartTime>
  <localTime>1752582600</localTime>
  <quality>3</quality>
  <tzOffset>-25200</tzOffset>
</Time>"""

READING = b"""<Reading xmlns="urn:ieee:std:2030.5:ns" href="/upt/1/mr/1/r">
  <timePeriod><duration>0</duration><start>1752604200</start></timePeriod>
  <value>-2500</value>
</Reading>"""

EDC = b"""<EndDeviceControlList xmlns="urn:ieee:std:2030.5:ns" all="1" results="1" href="/dr/1/edc">
<EndDeviceControl href="/dr/1/edc/7" replyTo="/rsps/1/rsp" responseRequired="03">
  <mRID>0000000000000000000700000000F00D</mRID>
  <description>Summer peak</description>
  <version>0</version>
  <creationTime>1752600000</creationTime>
  <EventStatus>
    <currentStatus>0</currentStatus>
    <dateTime>1752600000</dateTime>
    <potentiallySuperseded>false</potentiallySuperseded>
  </EventStatus>
  <interval><duration>10800</duration><start>1752613200</start></interval>
  <randomizeStart>300</randomizeStart>
  <deviceCategory>004001</deviceCategory>
  <drProgramMandatory>false</drProgramMandatory>
  <loadShiftForward>false</loadShiftForward>
  <Offset><coolingOffset>20</coolingOffset></Offset>
  <overrideDuration>1800</overrideDuration>
</EndDeviceControl></EndDeviceControlList>"""


def test_time_as_the_meter_serves_it() -> None:
    time = res.parse_time(TIME)
    assert time.current_time == datetime(2025, 7, 15, 18, 30, tzinfo=UTC)
    assert (time.tz_offset_s, time.dst_offset_s, time.quality, time.poll_rate) == (-25200, 3600, 3, 900)
    assert time.problems == ()


def test_a_reading_keeps_its_sign() -> None:
    reading = res.parse_reading(READING)
    assert reading.value == -2500
    assert reading.start == datetime(2025, 7, 15, 18, 30, tzinfo=UTC) and reading.duration_s == 0


def test_an_end_device_control_with_every_field() -> None:
    page = res.parse_end_device_control_list(EDC)
    assert (page.all, page.results) == (1, 1)
    (control,) = page.items
    assert isinstance(control, res.EndDeviceControl)
    assert control.event.mrid == "0000000000000000000700000000F00D"
    assert control.event.reply_to == "/rsps/1/rsp" and control.event.response_required == 3
    assert control.event.status == 0 and control.event.duration_s == 10800
    assert control.event.start == datetime.fromtimestamp(1752613200, UTC)
    assert control.device_category == 0x4001 and control.cooling_offset == 20
    assert control.randomize_start_s == 300 and control.override_duration_s == 1800
    assert control.mandatory is False and control.problems == ()


def test_a_field_in_another_format_is_rejected_and_the_rest_kept() -> None:
    body = READING.replace(b"<value>-2500</value>", b"<value>-2.5</value>")
    reading = res.parse_reading(body)
    assert reading.value is None
    assert reading.start == datetime(2025, 7, 15, 18, 30, tzinfo=UTC)
    assert reading.problems == ("Reading.value is not an integer: '-2.5'",)


def test_a_value_outside_int48_is_rejected() -> None:
    reading = res.parse_reading(READING.replace(b"-2500", str(1 << 47).encode()))
    assert reading.value is None and "out of range" in reading.problems[0]


def test_the_2013_namespace_and_none_are_read_too() -> None:
    assert res.parse_reading(READING.replace(b"urn:ieee:std:2030.5:ns", b"http://ieee.org/2030.5")).value == -2500
    assert res.parse_reading(READING.replace(b' xmlns="urn:ieee:std:2030.5:ns"', b"")).value == -2500


@pytest.mark.parametrize("body, why", [
    (b"", "not well-formed"),
    (b"<Reading", "not well-formed"),
    (b'<Time xmlns="urn:ieee:std:2030.5:ns"/>', "expected Reading"),
    (b'<Reading xmlns="urn:other"/>', "expected Reading"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Reading>&b;</Reading>',
     "DTD"),
    (b"<Reading>" + b"x" * (res.MAX_BODY + 1) + b"</Reading>", "over the"),
])
def test_what_is_not_a_resource_is_refused_whole(body: bytes, why: str) -> None:
    with pytest.raises(res.BadResource, match=why):
        res.parse_reading(body)


def test_a_list_entry_without_an_mrid_is_left_out_and_the_others_kept() -> None:
    second = EDC.split(b"<EndDeviceControl ", 1)[1].split(b"</EndDeviceControlList>")[0]
    broken = second.replace(b"<mRID>0000000000000000000700000000F00D</mRID>", b"<mRID>not hex</mRID>")
    body = EDC.replace(b"</EndDeviceControlList>", b"<EndDeviceControl " + broken + b"</EndDeviceControlList>")
    page = res.parse_end_device_control_list(body)
    assert len(page.items) == 1
    assert "no usable mRID" in page.problems[0]


def test_a_link_must_be_a_path_on_the_meter() -> None:
    body = (b'<DeviceCapability xmlns="urn:ieee:std:2030.5:ns" href="/dcap"><TimeLink href="https://elsewhere/tm"/>'
            b'<UsagePointListLink all="2" href="/upt"/></DeviceCapability>')
    dcap = res.parse_device_capability(body)
    assert dcap.link("TimeLink") is None
    assert dcap.link("UsagePointListLink") == res.Link("/upt", 2)


def test_a_response_is_the_standards_shape() -> None:
    body = res.response_xml("DrResponse", created=datetime.fromtimestamp(1752613380, UTC),
                            lfdi="9632ABA454EE609B3A328004DC1023D5E041C5B1", status=2,
                            subject="0000000000000000000700000000F00D")
    assert body == (b'<DrResponse xmlns="urn:ieee:std:2030.5:ns"><createdDateTime>1752613380</createdDateTime>'
                    b"<endDeviceLFDI>9632ABA454EE609B3A328004DC1023D5E041C5B1</endDeviceLFDI><status>2</status>"
                    b"<subject>0000000000000000000700000000F00D</subject></DrResponse>")


def test_every_parser_refuses_garbage_with_bad_resource() -> None:
    for name, parse in res.PARSERS.items():
        with pytest.raises(res.BadResource):
            parse(b"\x00\xff garbage")
        with pytest.raises(res.BadResource):
            parse(b"<Nothing/>" if name != "Nothing" else b"<x/>")
