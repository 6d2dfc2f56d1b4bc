"""``clusters/__init__.py``: zigpy's registry and endpoints use our SE classes."""

from unittest import mock

import pytest
import zigpy.endpoint
import zigpy.zcl
from zigpy.zcl.clusters import smartenergy as zigpy_se

from integrations.zigbee.se import clusters
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price

from ._hex import h

OURS = {0x0700: Price, 0x0701: Drlc, 0x0702: Metering, 0x0703: Messaging}


@pytest.mark.parametrize(("cluster_id", "cls"), sorted(OURS.items()))
def test_registry_maps_cluster_id_to_our_class(cluster_id: int, cls: type) -> None:
    assert zigpy.zcl.Cluster._registry[cluster_id] is cls


@pytest.mark.parametrize(("cluster_id", "cls"), sorted(OURS.items()))
def test_from_id_builds_our_class(cluster_id: int, cls: type) -> None:
    assert type(zigpy.zcl.Cluster.from_id(mock.MagicMock(), cluster_id)) is cls


def test_endpoint_input_and_output_clusters_use_our_classes() -> None:
    endpoint = zigpy.endpoint.Endpoint(mock.MagicMock(), 1)
    assert type(endpoint.add_input_cluster(0x0701)) is Drlc
    assert type(endpoint.add_output_cluster(0x0700)) is Price
    assert isinstance(endpoint.smartenergy_drlc, Drlc)


def test_zigpy_cluster_deserialize_decodes_a_load_control_event() -> None:
    cluster = zigpy.zcl.Cluster.from_id(mock.MagicMock(), 0x0701, is_server=False)
    frame = h("09 2A 00 | 78 56 34 12 05 00 00 00 00 00 00 3C 00 02 14 FF 00 80 00 80 80 FF 03")
    header, command = cluster.deserialize(frame)
    assert header.command_id == 0x00
    assert command.issuer_event_id == 0x12345678


def test_ensure_registered_restores_our_classes() -> None:
    original = zigpy.zcl.Cluster._registry[0x0700]
    zigpy.zcl.Cluster._registry[0x0700] = zigpy_se.Price
    try:
        clusters.ensure_registered()
        assert zigpy.zcl.Cluster._registry[0x0700] is Price
    finally:
        zigpy.zcl.Cluster._registry[0x0700] = original


def test_time_stays_zigpys() -> None:
    assert zigpy.zcl.Cluster._registry[0x000A] is clusters.Time
