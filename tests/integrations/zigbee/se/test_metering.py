"""Metering (0x0702): what was checked in zigpy 2.4.0's definition, and what we add."""

import pytest
import zigpy.types as t
from zigpy.zcl.clusters import smartenergy as zigpy_se
from zigpy.zcl.foundation import DataTypeId

from integrations.zigbee.se.clusters.metering import Metering, ProfileStatus
from integrations.zigbee.se.codec import parse_frame

from ._hex import h
from ._samples import METERING, T0, assert_round_trip

S2C = Metering.ClientCommandDefs
C2S = Metering.ServerCommandDefs


@pytest.mark.parametrize("command_name", sorted(METERING))
def test_command_round_trips(command_name: str) -> None:
    assert_round_trip(Metering, command_name, METERING[command_name])


def test_ours_subclasses_zigpys_metering() -> None:
    assert issubclass(Metering, zigpy_se.Metering)
    assert Metering.cluster_id == 0x0702
    assert Metering.ep_attribute == "smartenergy_metering"


def test_server_to_client_command_ids_match_spec() -> None:  # §5.9
    assert {c.id: c.name for c in S2C} == {
        0x00: "get_profile_response",
        0x01: "request_mirror",
        0x02: "remove_mirror",
        0x03: "request_fast_poll_mode_response",
        0x04: "schedule_snapshot_response",
        0x05: "take_snapshot_response",
        0x06: "publish_snapshot",
        0x07: "get_sampled_data_response",
        0x08: "configure_mirror",
        0x09: "configure_notification_scheme",
        0x0A: "configure_notification_flag",
        0x0B: "get_notified_message",
        0x0C: "supply_status_response",
        0x0D: "start_sampling_response",
    }


def test_client_to_server_command_ids_match_spec() -> None:  # §5.9
    assert {c.id: c.name for c in C2S} == {
        0x00: "get_profile",
        0x01: "request_mirror_response",
        0x02: "mirror_removed",
        0x03: "request_fast_poll_mode",
        0x04: "schedule_snapshot",
        0x05: "take_snapshot",
        0x06: "get_snapshot",
        0x07: "start_sampling",
        0x08: "get_sampled_data",
        0x09: "mirror_report_attribute_response",
        0x0A: "reset_load_limit_counter",
        0x0B: "change_supply",
        0x0C: "local_change_supply",
        0x0D: "set_supply_status",
        0x0E: "set_uncontrolled_flow_threshold",
    }


def test_get_profile_matches_spec_vector() -> None:  # §9.2
    payload = h("00 | 00 00 00 00 | 18")
    fields = METERING["get_profile"]
    assert C2S.get_profile.schema(**fields).serialize() == payload
    assert parse_frame(Metering, h("01 01 00") + payload).fields == fields


def test_get_profile_response_matches_spec_vector() -> None:  # §9.2
    payload = h("00 BD 24 2D | 00 | 03 | 02 | F4 01 00 | C8 00 00")
    fields = METERING["get_profile_response"]
    assert S2C.get_profile_response.schema(**fields).serialize() == payload
    assert parse_frame(Metering, h("09 01 00") + payload).fields == fields


def test_get_profile_response_is_7_plus_3n_bytes() -> None:
    fields = {**METERING["get_profile_response"], "number_of_periods_delivered": 0, "intervals": []}
    assert len(S2C.get_profile_response.schema(**fields).serialize()) == 7


def test_get_profile_response_status_values_read_through_profile_status() -> None:
    parsed = parse_frame(Metering, h("09 01 00 | 00 BD 24 2D | 05 | 03 | 00"))
    status = ProfileStatus(parsed.fields["status"])
    assert status == ProfileStatus.No_Intervals_Available_For_The_Requested_Time


def test_get_profile_response_with_fewer_intervals_than_announced_is_malformed() -> None:
    from integrations.zigbee.se.codec import MalformedFrame

    with pytest.raises(MalformedFrame, match="get_profile_response"):
        parse_frame(Metering, h("09 01 00 | 00 BD 24 2D | 00 | 03 | 02 | F4 01 00"))


def test_request_fast_poll_mode_is_two_bytes() -> None:  # §5.8
    assert C2S.request_fast_poll_mode.schema(**METERING["request_fast_poll_mode"]).serialize() == h(
        "02 0F"
    )


def test_request_fast_poll_mode_response_is_five_bytes() -> None:  # §5.8
    encoded = S2C.request_fast_poll_mode_response.schema(
        applied_update_period=5, fast_poll_mode_end_time=T0
    ).serialize()
    assert encoded == h("05 | 00 BD 24 2D")


# §5.1 rows: (id, name in zigpy, bits, signed, zcl type where the spec fixes it)
SPEC_5_1 = [
    (0x0000, "current_summ_delivered", 48, False, DataTypeId.uint48),
    (0x0001, "current_summ_received", 48, False, DataTypeId.uint48),
    (0x0002, "current_max_demand_delivered", 48, False, DataTypeId.uint48),
    (0x0003, "current_max_demand_received", 48, False, DataTypeId.uint48),
    (0x0004, "dft_summ", 48, False, DataTypeId.uint48),
    (0x0005, "daily_freeze_time", 16, False, DataTypeId.uint16),
    (0x0006, "power_factor", 8, True, DataTypeId.int8),
    (0x0007, "reading_snapshot_time", 32, False, DataTypeId.UTC),
    (0x0008, "current_max_demand_delivered_time", 32, False, DataTypeId.UTC),
    (0x0009, "current_max_demand_received_time", 32, False, DataTypeId.UTC),
    (0x000A, "default_update_period", 8, False, DataTypeId.uint8),
    (0x000B, "fast_poll_update_period", 8, False, DataTypeId.uint8),
    (0x000C, "current_block_period_consumption_delivered", 48, False, DataTypeId.uint48),
    (0x000D, "daily_consumption_target", 24, False, DataTypeId.uint24),
    (0x000E, "current_block", 8, False, DataTypeId.enum8),
    (0x000F, "profile_interval_period", 8, False, DataTypeId.enum8),
    (0x0014, "supply_status", 8, False, DataTypeId.enum8),
    (0x001C, "previous_block_period_consumption_delivered", 48, False, DataTypeId.uint48),
    (0x001E, "current_block_received", 8, False, DataTypeId.enum8),
    (0x0100, "current_tier1_summ_delivered", 48, False, DataTypeId.uint48),
    (0x011C, "current_tier15_summ_delivered", 48, False, DataTypeId.uint48),
    (0x011D, "current_tier15_summ_received", 48, False, DataTypeId.uint48),
    (0x0200, "status", 8, False, DataTypeId.map8),
    (0x0201, "remaining_battery_life", 8, False, DataTypeId.uint8),
    (0x0202, "hours_in_operation", 24, False, DataTypeId.uint24),
    (0x0203, "hours_in_fault", 24, False, DataTypeId.uint24),
    (0x0204, "extended_status", 64, False, DataTypeId.map64),
    (0x0300, "unit_of_measure", 8, False, DataTypeId.enum8),
    (0x0301, "multiplier", 24, False, DataTypeId.uint24),
    (0x0302, "divisor", 24, False, DataTypeId.uint24),
    (0x0303, "summation_formatting", 8, False, DataTypeId.map8),
    (0x0304, "demand_formatting", 8, False, DataTypeId.map8),
    (0x0305, "historical_consumption_formatting", 8, False, DataTypeId.map8),
    (0x0306, "metering_device_type", 8, False, DataTypeId.map8),
    (0x0400, "instantaneous_demand", 24, True, DataTypeId.int24),
    (0x0401, "currentday_consumption_delivered", 24, False, DataTypeId.uint24),
    (0x0402, "currentday_consumption_received", 24, False, DataTypeId.uint24),
    (0x0403, "previousday_consumption_delivered", 24, False, DataTypeId.uint24),
    (0x0404, "previousday_consumption_received", 24, False, DataTypeId.uint24),
    (0x0405, "cur_part_profile_int_start_time_delivered", 32, False, DataTypeId.UTC),
    (0x0406, "cur_part_profile_int_start_time_received", 32, False, DataTypeId.UTC),
    (0x0407, "cur_part_profile_int_value_delivered", 24, False, DataTypeId.uint24),
    (0x0408, "cur_part_profile_int_value_received", 24, False, DataTypeId.uint24),
    (0x0500, "max_number_of_periods_delivered", 8, False, DataTypeId.uint8),
    (0x0600, "current_demand_delivered", 24, False, DataTypeId.uint24),
    (0x0601, "demand_limit", 24, False, DataTypeId.uint24),
]


@pytest.mark.parametrize(("attr_id", "name", "bits", "signed", "zcl_type"), SPEC_5_1)
def test_attribute_type_matches_spec_5_1(
    attr_id: int, name: str, bits: int, signed: bool, zcl_type: DataTypeId
) -> None:
    attr = zigpy_se.Metering.attributes[attr_id]  # zigpy's own definition
    assert attr.name == name
    assert attr.type._bits == bits
    assert attr.type._signed == signed
    assert attr.zcl_type == zcl_type


def test_site_id_and_serial_number_are_octet_strings() -> None:
    assert zigpy_se.Metering.attributes[0x0307].zcl_type == DataTypeId.octstr
    assert zigpy_se.Metering.attributes[0x0308].zcl_type == DataTypeId.octstr


def test_current_block_received_is_enum8_not_uint48_in_zigpy_240() -> None:
    attr = zigpy_se.Metering.attributes[0x001E]
    assert attr.type is zigpy_se.CurrentBlock
    assert attr.type.deserialize(h("03 FF"))[0] == zigpy_se.CurrentBlock.Block3


def test_instantaneous_demand_decodes_negative_export() -> None:
    value, _ = Metering.attributes[0x0400].type.deserialize(h("18 FC FF"))
    assert value == -1000


@pytest.mark.parametrize(
    ("attr_id", "name"),
    [
        (0x0010, "interval_read_reporting_period"),
        (0x011E, "current_tier16_summ_delivered"),
        (0x011F, "current_tier16_summ_received"),
        (0x015E, "current_tier48_summ_delivered"),
        (0x015F, "current_tier48_summ_received"),
        (0x0700, "current_no_tier_block1_summ_delivered"),
        (0x070F, "current_no_tier_block16_summ_delivered"),
        (0x0710, "current_tier1_block1_summ_delivered"),
        (0x07FF, "current_tier15_block16_summ_delivered"),
        (0xFFFE, "attribute_reporting_status"),
    ],
)
def test_attribute_missing_from_zigpy_is_added(attr_id: int, name: str) -> None:
    assert attr_id not in zigpy_se.Metering.attributes
    assert Metering.attributes[attr_id].name == name


def test_added_summations_are_uint48() -> None:
    assert Metering.attributes[0x0700].type is t.uint48_t
    assert Metering.attributes[0x011E].type is t.uint48_t


def test_zigpy_attributes_are_kept() -> None:
    assert set(zigpy_se.Metering.attributes) <= set(Metering.attributes)
