"""``clusters/__init__.py``: the SE classes are installed per device, never in zigpy's registry."""

from unittest import mock

import pytest
import zigpy.endpoint
import zigpy.zcl
from zigpy.zcl.clusters import smartenergy as zigpy_se

from integrations.zigbee.attributes import lookup_cluster
from integrations.zigbee.se import clusters
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price
from integrations.zigbee.se_profile import SmartEnergyEndpoint

from ._hex import h

OURS = {0x0700: Price, 0x0701: Drlc, 0x0702: Metering, 0x0703: Messaging}
ZIGPYS = {0x0700: zigpy_se.Price, 0x0701: zigpy_se.Drlc, 0x0702: zigpy_se.Metering, 0x0703: zigpy_se.Messaging}


@pytest.mark.parametrize(("cluster_id", "cls"), sorted(ZIGPYS.items()))
def test_importing_the_library_leaves_zigpys_registry_alone(cluster_id: int, cls: type) -> None:
    assert zigpy.zcl.Cluster._registry[cluster_id] is cls


@pytest.mark.parametrize(("cluster_id", "cls"), sorted(OURS.items()))
def test_the_librarys_own_table_and_lookup_cluster_give_our_class(cluster_id: int, cls: type) -> None:
    assert clusters.cluster_class(cluster_id) is cls
    assert lookup_cluster(cluster_id) is cls


def test_other_ids_are_not_in_the_librarys_table() -> None:
    assert clusters.cluster_class(0x000A) is None
    assert lookup_cluster(0x000A) is zigpy.zcl.Cluster._registry[0x000A]


def test_an_se_aware_endpoint_builds_our_classes_a_plain_one_zigpys() -> None:
    endpoint = SmartEnergyEndpoint(mock.MagicMock(), 1)
    assert type(endpoint.add_input_cluster(0x0701)) is Drlc
    assert type(endpoint.add_output_cluster(0x0700)) is Price
    assert isinstance(endpoint.smartenergy_drlc, Drlc)
    plain = zigpy.endpoint.Endpoint(mock.MagicMock(), 1)
    assert type(plain.add_input_cluster(0x0701)) is zigpy_se.Drlc


def test_install_replaces_the_se_clusters_of_a_device_in_place() -> None:
    device = mock.MagicMock()
    endpoint = zigpy.endpoint.Endpoint(device, 1)
    endpoint.add_input_cluster(0x0702)
    endpoint.add_output_cluster(0x0701)
    endpoint.add_input_cluster(0x0006)
    device.endpoints = {0: mock.MagicMock(), 1: endpoint}
    assert clusters.install(device) == 2
    assert type(endpoint.in_clusters[0x0702]) is Metering and endpoint.in_clusters[0x0702].is_server
    assert type(endpoint.out_clusters[0x0701]) is Drlc and endpoint.out_clusters[0x0701].is_client
    assert endpoint.smartenergy_metering is endpoint.in_clusters[0x0702]
    assert type(endpoint.in_clusters[0x0006]) is zigpy.zcl.Cluster._registry[0x0006]
    assert clusters.install(device) == 0  # idempotent


def test_our_cluster_deserialize_decodes_a_load_control_event() -> None:
    cluster = Drlc(mock.MagicMock(), is_server=False)
    frame = h("09 2A 00 | 78 56 34 12 05 00 00 00 00 00 00 3C 00 02 14 FF 00 80 00 80 80 FF 03")
    header, command = cluster.deserialize(frame)
    assert header.command_id == 0x00
    assert command.issuer_event_id == 0x12345678


def test_time_stays_zigpys() -> None:
    assert zigpy.zcl.Cluster._registry[0x000A] is clusters.Time
