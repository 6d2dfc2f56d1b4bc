"""DRLC cluster (0x0701): command layouts, spec §9.2 vectors and enums."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from integrations.zigbee.se.clusters.drlc import (
    FILLER_SIGNATURE,
    CancelControl,
    CriticalityLevel,
    DeviceClass,
    Drlc,
    EventControl,
    EventStatus,
    Signature,
    SignatureType,
)
from integrations.zigbee.se.codec import MalformedFrame, build_frame, parse_frame

from ._hex import h

S2C = Drlc.ClientCommandDefs
C2S = Drlc.ServerCommandDefs

LCE_1_FIELDS = {
    "issuer_event_id": 0x12345678,
    "device_class": DeviceClass.HVAC_Compressor_or_Furnace | DeviceClass.Water_Heater,
    "utility_enrollment_group": 0,
    "start_time": 0,
    "duration_in_minutes": 60,
    "criticality_level": CriticalityLevel.Level_1,
    "cooling_temperature_offset": 0x14,
    "heating_temperature_offset": 0xFF,
    "cooling_temperature_set_point": -0x8000,
    "heating_temperature_set_point": -0x8000,
    "average_load_adjustment_percentage": -128,
    "duty_cycle": 0xFF,
    "event_control": EventControl.Randomize_Start_Time | EventControl.Randomize_End_Time,
}
LCE_1_PAYLOAD = h(
    "78 56 34 12 | 05 00 | 00 | 00 00 00 00 | 3C 00 | 02 | 14 | FF | 00 80 | 00 80 | 80 | FF | 03"
)

LCE_2_FIELDS = {
    "issuer_event_id": 0x00000101,
    "device_class": DeviceClass.Smart_Appliances | DeviceClass.Electric_Vehicle,
    "utility_enrollment_group": 0x07,
    "start_time": 757382400,
    "duration_in_minutes": 120,
    "criticality_level": CriticalityLevel.Emergency,
    "cooling_temperature_offset": 0xFF,
    "heating_temperature_offset": 0xFF,
    "cooling_temperature_set_point": 2600,
    "heating_temperature_set_point": 1850,
    "average_load_adjustment_percentage": -20,
    "duty_cycle": 50,
    "event_control": EventControl.Randomize_Start_Time,
}
LCE_2_PAYLOAD = h(
    "01 01 00 00 | 10 04 | 07 | 00 BD 24 2D | 78 00 | 07 | FF | FF | 28 0A | 3A 07 | EC | 32 | 01"
)

RES_FIELDS = {
    "issuer_event_id": 0x12345678,
    "event_status": EventStatus.Load_Control_Event_Command_Received,
    "event_status_time": 757382405,
    "criticality_level_applied": CriticalityLevel.Level_1,
    "cooling_temperature_set_point_applied": -0x8000,
    "heating_temperature_set_point_applied": -0x8000,
    "average_load_adjustment_percentage_applied": -128,
    "duty_cycle_applied": 0xFF,
    "event_control": 0x03,
    "signature_type": SignatureType.No_Signature,
    "signature": FILLER_SIGNATURE,
}
RES_CORE = h("78 56 34 12 | 01 | 05 BD 24 2D | 02 | 00 80 | 00 80 | 80 | FF | 03")
RES_PAYLOAD = RES_CORE + h("00") + b"\xff" * 42


def test_load_control_event_1_encodes_to_spec_vector() -> None:
    assert S2C.load_control_event.schema(**LCE_1_FIELDS).serialize() == LCE_1_PAYLOAD


def test_load_control_event_1_is_23_bytes() -> None:
    assert len(LCE_1_PAYLOAD) == 23


def test_load_control_event_1_decodes_to_spec_fields() -> None:
    value, rest = S2C.load_control_event.schema.deserialize(LCE_1_PAYLOAD)
    assert value.as_dict() == LCE_1_FIELDS
    assert rest == b""


def test_load_control_event_1_full_frame_matches_spec() -> None:
    frame = build_frame(Drlc, "load_control_event", tsn=0x2A, **LCE_1_FIELDS)
    assert frame == h("09 2A 00") + LCE_1_PAYLOAD


def test_load_control_event_2_encodes_to_spec_vector() -> None:
    assert S2C.load_control_event.schema(**LCE_2_FIELDS).serialize() == LCE_2_PAYLOAD


def test_load_control_event_2_decodes_signed_set_points_and_adjustment() -> None:
    value, _ = S2C.load_control_event.schema.deserialize(LCE_2_PAYLOAD)
    assert value.as_dict() == LCE_2_FIELDS
    assert value.average_load_adjustment_percentage == -20


def test_load_control_event_truncated_by_one_byte_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="load_control_event"):
        parse_frame(Drlc, h("09 2A 00") + LCE_1_PAYLOAD[:-1])


CANCEL_FIELDS = {
    "issuer_event_id": 0x12345678,
    "device_class": 0x0005,
    "utility_enrollment_group": 0,
    "cancel_control": CancelControl.Terminate_With_Randomization,
    "effective_time": 0,
}
CANCEL_PAYLOAD = h("78 56 34 12 | 05 00 | 00 | 01 | 00 00 00 00")


def test_cancel_load_control_event_encodes_to_spec_vector() -> None:
    assert S2C.cancel_load_control_event.schema(**CANCEL_FIELDS).serialize() == CANCEL_PAYLOAD


def test_cancel_load_control_event_decodes_to_spec_fields() -> None:
    value, _ = S2C.cancel_load_control_event.schema.deserialize(CANCEL_PAYLOAD)
    assert value.as_dict() == CANCEL_FIELDS


def test_cancel_all_load_control_events_round_trips_one_byte() -> None:
    encoded = S2C.cancel_all_load_control_events.schema(cancel_control=0x01).serialize()
    assert encoded == h("01")
    value, _ = S2C.cancel_all_load_control_events.schema.deserialize(encoded)
    assert value.cancel_control == CancelControl.Terminate_With_Randomization


def test_report_event_status_encodes_to_spec_vector() -> None:
    assert C2S.report_event_status.schema(**RES_FIELDS).serialize() == RES_PAYLOAD


def test_report_event_status_is_60_bytes() -> None:
    assert len(RES_PAYLOAD) == 60


def test_report_event_status_full_frame_has_client_to_server_header() -> None:
    frame = build_frame(Drlc, "report_event_status", tsn=0x2B, **RES_FIELDS)
    assert frame == h("01 2B 00") + RES_PAYLOAD


def test_report_event_status_decodes_to_spec_fields() -> None:
    value, _ = C2S.report_event_status.schema.deserialize(RES_PAYLOAD)
    assert value.as_dict() == RES_FIELDS


def test_report_event_status_without_signature_bytes_decodes() -> None:
    value, _ = C2S.report_event_status.schema.deserialize(RES_CORE)
    assert value.signature_type is None
    assert value.signature is None
    assert value.event_control == 0x03


def test_report_event_status_with_type_but_no_signature_decodes() -> None:
    value, _ = C2S.report_event_status.schema.deserialize(RES_CORE + h("00"))
    assert value.signature_type == SignatureType.No_Signature
    assert value.signature is None


def test_report_event_status_with_partial_signature_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="report_event_status"):
        parse_frame(Drlc, h("01 2B 00") + RES_CORE + h("01") + b"\x00" * 10)


def test_signature_must_be_42_bytes_to_encode() -> None:
    with pytest.raises(ValueError, match="42 bytes"):
        Signature(b"\x00" * 41).serialize()


def test_get_scheduled_events_se11_form_matches_spec() -> None:
    encoded = C2S.get_scheduled_events.schema(start_time=0, number_of_events=0).serialize()
    assert encoded == h("00 00 00 00 | 00")


def test_get_scheduled_events_se12b_issuer_event_id_round_trips() -> None:
    encoded = C2S.get_scheduled_events.schema(
        start_time=5, number_of_events=3, issuer_event_id=0xFFFFFFFF
    ).serialize()
    assert encoded == h("05 00 00 00 | 03 | FF FF FF FF")
    value, _ = C2S.get_scheduled_events.schema.deserialize(encoded)
    assert value.issuer_event_id == 0xFFFFFFFF


def test_get_scheduled_events_without_issuer_event_id_decodes_as_absent() -> None:
    value, _ = C2S.get_scheduled_events.schema.deserialize(h("00 00 00 00 | 00"))
    assert value.issuer_event_id is None


def test_command_ids_are_scoped_by_direction() -> None:
    assert {c.id: c.name for c in Drlc.ClientCommandDefs} == {
        0x00: "load_control_event",
        0x01: "cancel_load_control_event",
        0x02: "cancel_all_load_control_events",
    }
    assert {c.id: c.name for c in Drlc.ServerCommandDefs} == {
        0x00: "report_event_status",
        0x01: "get_scheduled_events",
    }


def test_server_to_client_frame_decodes_as_load_control_event() -> None:
    parsed = parse_frame(Drlc, h("09 2A 00") + LCE_1_PAYLOAD)
    assert parsed.command_name == "load_control_event"
    assert parsed.header.direction == foundation.Direction.Server_to_Client


def test_client_attributes_match_spec_ids_and_types() -> None:
    attrs = {a.id: (a.name, a.type) for a in Drlc.AttributeDefs}
    assert attrs[0x0000][0] == "utility_enrollment_group"
    assert attrs[0x0001][0] == "start_randomization_minutes"
    assert attrs[0x0002][0] == "duration_randomization_minutes"
    assert attrs[0x0003][0] == "device_class_value"
    assert attrs[0xFFFE][0] == "attribute_reporting_status"
    assert all(attrs[i][1]._bits == 8 for i in (0x0000, 0x0001, 0x0002, 0xFFFE))
    assert attrs[0x0003][1]._bits == 16


def test_event_status_has_every_value_of_the_spec() -> None:
    defined = {int(v) for v in EventStatus}
    assert defined == {0x00, *range(0x01, 0x0B), 0xF6, 0xF7, 0xF8, 0xF9, 0xFB, 0xFD, 0xFE}


def test_event_status_leaves_ti_only_values_reserved() -> None:
    assert EventStatus(0xFA).name.startswith("undefined")
    assert EventStatus(0xFC).name.startswith("undefined")


def test_criticality_level_names_the_spec_levels() -> None:
    assert CriticalityLevel(0x01) == CriticalityLevel.Green
    assert CriticalityLevel(0x07) == CriticalityLevel.Emergency
    assert CriticalityLevel(0x0F) == CriticalityLevel.Utility_Defined_6


def test_device_class_bits_match_spec() -> None:
    assert DeviceClass.Electric_Vehicle == 0x0400
    assert DeviceClass.Generation_Systems == 0x0800
    assert int(DeviceClass(0x0FFF)) == sum(int(m) for m in DeviceClass)


uint8 = st.integers(0, 0xFF)
uint16 = st.integers(0, 0xFFFF)
uint32 = st.integers(0, 0xFFFFFFFF)
int16 = st.integers(-0x8000, 0x7FFF)
int8 = st.integers(-0x80, 0x7F)


@settings(deadline=None, max_examples=200)
@given(
    st.fixed_dictionaries(
        {
            "issuer_event_id": uint32,
            "device_class": uint16,
            "utility_enrollment_group": uint8,
            "start_time": uint32,
            "duration_in_minutes": uint16,
            "criticality_level": uint8,
            "cooling_temperature_offset": uint8,
            "heating_temperature_offset": uint8,
            "cooling_temperature_set_point": int16,
            "heating_temperature_set_point": int16,
            "average_load_adjustment_percentage": int8,
            "duty_cycle": uint8,
            "event_control": uint8,
        }
    )
)
def test_load_control_event_round_trips_any_field_values(fields: dict[str, int]) -> None:
    frame = build_frame(Drlc, "load_control_event", tsn=1, **fields)
    assert len(frame) == 3 + 23
    parsed = parse_frame(Drlc, frame)
    assert parsed.command_name == "load_control_event"
    assert {k: int(v) for k, v in parsed.fields.items()} == fields
