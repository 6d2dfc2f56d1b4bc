"""Time cluster (0x000A) is zigpy's; its attributes are checked against digest §7.1."""

import pytest
from zigpy.zcl.clusters.general import Time, TimeStatus
from zigpy.zcl.foundation import DataTypeId

from integrations.zigbee.se import clusters


@pytest.mark.parametrize(
    ("attr_id", "name", "zcl_type"),
    [
        (0x0000, "time", DataTypeId.UTC),
        (0x0001, "time_status", DataTypeId.map8),
        (0x0002, "time_zone", DataTypeId.int32),
        (0x0003, "dst_start", DataTypeId.uint32),
        (0x0004, "dst_end", DataTypeId.uint32),
        (0x0005, "dst_shift", DataTypeId.int32),
        (0x0006, "standard_time", DataTypeId.uint32),
        (0x0007, "local_time", DataTypeId.uint32),
        (0x0008, "last_set_time", DataTypeId.UTC),
        (0x0009, "valid_until_time", DataTypeId.UTC),
    ],
)
def test_time_attribute_matches_spec_7_1(attr_id: int, name: str, zcl_type: DataTypeId) -> None:
    attr = Time.attributes[attr_id]
    assert attr.name == name
    assert attr.zcl_type == zcl_type


def test_time_status_masks_match_spec() -> None:
    assert (
        TimeStatus.Master,
        TimeStatus.Synchronized,
        TimeStatus.Master_for_Zone_and_DST,
        TimeStatus.Superseding,
    ) == (0x01, 0x02, 0x04, 0x08)


def test_time_cluster_is_exported_unchanged() -> None:
    assert clusters.Time is Time
    assert Time.cluster_id == 0x000A
