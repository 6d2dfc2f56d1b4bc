"""Messaging cluster (0x0703): every command round-trips, spec §9.2 vectors, controls."""

import pytest

from integrations.zigbee.se.clusters.messaging import (
    MessageConfirmationControl,
    MessageControl,
    MessageImportance,
    MessageResponse,
    MessageTransmission,
    Messaging,
)
from integrations.zigbee.se.codec import MalformedFrame, build_frame, parse_frame

from ._hex import h
from ._samples import MESSAGING, T0, assert_round_trip

S2C = Messaging.ClientCommandDefs
C2S = Messaging.ServerCommandDefs

DISPLAY_FIELDS = {
    "message_id": 1,
    "message_control": 0x88,
    "start_time": 0,
    "duration_in_minutes": 60,
    "message": "Hello",
}
DISPLAY_PAYLOAD = h("01 00 00 00 | 88 | 00 00 00 00 | 3C 00 | 05 48 65 6C 6C 6F")


@pytest.mark.parametrize("command_name", sorted(MESSAGING))
def test_command_round_trips(command_name: str) -> None:
    assert_round_trip(Messaging, command_name, MESSAGING[command_name])


def test_round_trip_samples_cover_every_command() -> None:
    assert set(MESSAGING) == {c.name for c in S2C} | {c.name for c in C2S}


def test_command_ids_match_spec_table() -> None:
    assert {c.id: c.name for c in S2C} == {
        0x00: "display_message",
        0x01: "cancel_message",
        0x02: "display_protected_message",
        0x03: "cancel_all_messages",
    }
    assert {c.id: c.name for c in C2S} == {
        0x00: "get_last_message",
        0x01: "message_confirmation",
        0x02: "get_message_cancellation",
    }


def test_display_message_encodes_to_spec_vector() -> None:
    encoded = S2C.display_message.schema(**DISPLAY_FIELDS).serialize()
    assert encoded == DISPLAY_PAYLOAD
    assert len(encoded) == 17


def test_display_message_decodes_to_spec_fields() -> None:
    assert parse_frame(Messaging, h("09 01 00") + DISPLAY_PAYLOAD).fields == DISPLAY_FIELDS


def test_display_message_se12_extended_control_is_optional_trailing_byte() -> None:
    parsed = parse_frame(Messaging, h("09 01 00") + DISPLAY_PAYLOAD + h("01"))
    assert parsed.fields["extended_message_control"] == 0x01


def test_display_message_length_prefix_counts_utf8_bytes() -> None:
    fields = {**DISPLAY_FIELDS, "message": "Grüße €"}
    encoded = S2C.display_message.schema(**fields).serialize()
    assert encoded[11] == len("Grüße €".encode())  # 10 bytes, not 7 characters
    assert parse_frame(Messaging, h("09 01 00") + encoded).fields["message"] == "Grüße €"


def test_display_message_with_invalid_utf8_decodes_with_replacement() -> None:
    payload = DISPLAY_PAYLOAD[:11] + h("03 41 FF 42")
    assert parse_frame(Messaging, h("09 01 00") + payload).fields["message"] == "A\ufffdB"


def test_display_message_text_longer_than_the_data_is_malformed() -> None:
    with pytest.raises(MalformedFrame, match="display_message"):
        parse_frame(Messaging, h("09 01 00") + DISPLAY_PAYLOAD[:11] + h("09 41 42"))


def test_message_confirmation_se11_matches_spec_vector() -> None:
    payload = h("01 00 00 00 | 78 BD 24 2D")
    fields = {"message_id": 1, "confirmation_time": T0 + 120}
    assert C2S.message_confirmation.schema(**fields).serialize() == payload
    assert parse_frame(Messaging, h("01 02 01") + payload).fields == fields


def test_message_confirmation_se12_matches_spec_vector() -> None:
    payload = h("01 00 00 00 | 78 BD 24 2D | 02 | 03 59 65 73")
    fields = {
        "message_id": 1,
        "confirmation_time": T0 + 120,
        "message_confirmation_control": MessageConfirmationControl.Yes_Returned,
        "message_response": "Yes",
    }
    assert C2S.message_confirmation.schema(**fields).serialize() == payload
    assert len(payload) == 13
    assert parse_frame(Messaging, h("01 02 01") + payload).fields == fields


def test_message_response_over_20_bytes_is_refused_on_encode() -> None:
    with pytest.raises(ValueError, match="limit is 20"):
        build_frame(
            Messaging,
            "message_confirmation",
            tsn=1,
            message_id=1,
            confirmation_time=T0,
            message_confirmation_control=0x02,
            message_response="x" * 21,
        )


def test_message_response_fit_trims_to_20_bytes() -> None:
    assert MessageResponse.fit("é" * 15).encode() == ("é" * 10).encode()


def test_get_last_message_has_no_payload() -> None:
    assert build_frame(Messaging, "get_last_message", tsn=9) == h("01 09 00")


def test_cancel_all_messages_carries_implementation_time() -> None:
    frame = build_frame(Messaging, "cancel_all_messages", tsn=1, implementation_date_time=T0)
    assert frame == h("09 01 03 | 00 BD 24 2D")


def test_message_control_0x88_is_normal_high_confirmation_required() -> None:
    control = MessageControl(0x88)
    assert control.transmission == MessageTransmission.Normal
    assert control.importance == MessageImportance.High
    assert control.message_confirmation_required == 1
    assert control.enhanced_confirmation_required == 0


def test_message_control_builds_from_named_fields() -> None:
    control = MessageControl(
        transmission=MessageTransmission.Anonymous_Inter_PAN_Only,
        importance=MessageImportance.Critical,
        reserved_4=0,
        enhanced_confirmation_required=1,
        reserved_6=0,
        message_confirmation_required=1,
    )
    assert control == 0x02 | 0x0C | 0x20 | 0x80


def test_message_control_importance_byte_values_match_spec() -> None:
    assert [int(MessageControl(v).importance) for v in (0x00, 0x04, 0x08, 0x0C)] == [0, 1, 2, 3]
