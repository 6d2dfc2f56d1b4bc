"""ZigBee Smart Energy 1.x clusters for zigpy: Price, DRLC, Messaging, Metering.

Protocol only: this package imports zigpy and the standard library, never ``ems``.

Importing it changes nothing in zigpy: the classes set ``_skip_registry``, so zigpy's global
registry (``zigpy.zcl.Cluster._registry``, which ``Cluster.from_id`` and every endpoint read)
keeps zigpy's own classes. They are installed where they are wanted, in zigpy quirks v2 style:

* ``cluster_class(cluster_id)`` is this library's own table (SE IDs -> these classes), which the
  radio's SE-aware device (``integrations.zigbee.se_profile``) consults when it builds endpoints
  and ``integrations.zigbee.attributes.lookup_cluster`` consults first;
* ``install(device)`` replaces the SE cluster objects on a device's endpoints that were built
  otherwise (the meter's device at session start, the home's devices at setup).

zigpy's informational ``zigpy.zcl.clusters.CLUSTERS_BY_ID`` / ``CLUSTERS_BY_NAME`` tables are
left as they are. The Time cluster (0x000A) is zigpy's ``zigpy.zcl.clusters.general.Time``.
"""

from collections.abc import Mapping
from typing import Any, Final

from zigpy.zcl import Cluster
from zigpy.zcl.clusters.general import Time

from ._frames import FrameCodecError, FrameSink, SeFrames
from .drlc import (
    CancelControl,
    CriticalityLevel,
    DeviceClass,
    Drlc,
    EventControl,
    EventStatus,
    Signature,
    SignatureType,
)
from .messaging import (
    ExtendedMessageControl,
    MessageConfirmationControl,
    MessageControl,
    MessageImportance,
    MessageResponse,
    MessageText,
    MessageTransmission,
    Messaging,
)
from .metering import IntervalChannel, Metering, ProfileStatus
from .price import (
    BlockPeriodControl,
    BlockThresholdSubPayload,
    CPPAuth,
    CPPPriceTier,
    GetCurrentPriceOptions,
    Price,
    PriceClientAttributeDefs,
    PriceControl,
    PriceMatrixEntry,
    PublishBlockPeriodSE11,
    PublishBlockPeriodSE12,
    TierLabel,
    decode_publish_block_period,
)

SE_CLUSTERS: tuple[type[Cluster], ...] = (Price, Drlc, Metering, Messaging)
_BY_ID: Final[Mapping[int, type[Cluster]]] = {int(cls.cluster_id): cls for cls in SE_CLUSTERS}


def cluster_class(cluster_id: int) -> type[Cluster] | None:
    """This library's class for an SE cluster ID (None for any other ID)."""
    return _BY_ID.get(int(cluster_id))


def install(device: Any) -> int:
    """Replace the SE cluster objects on ``device``'s endpoints with this library's classes.

    Quirks v2 style: per device, on both sides (server clusters in ``in_clusters``, client
    clusters in ``out_clusters``); a cluster already of the right class is kept (idempotent).
    Returns how many cluster objects were replaced.
    """
    replaced = 0
    for endpoint_id, endpoint in list(device.endpoints.items()):
        if endpoint_id == 0 or not hasattr(endpoint, "in_clusters"):
            continue
        for clusters, add, is_server in ((endpoint.in_clusters, endpoint.add_input_cluster, True),
                                         (endpoint.out_clusters, endpoint.add_output_cluster, False)):
            for cluster_id, cluster in list(clusters.items()):
                cls = _BY_ID.get(int(cluster_id))
                if cls is None or type(cluster) is cls:
                    continue
                add(cluster_id, cls(endpoint, is_server=is_server))
                replaced += 1
    return replaced

__all__ = [
    "SE_CLUSTERS",
    "BlockPeriodControl",
    "BlockThresholdSubPayload",
    "CPPAuth",
    "CPPPriceTier",
    "CancelControl",
    "CriticalityLevel",
    "DeviceClass",
    "Drlc",
    "EventControl",
    "EventStatus",
    "ExtendedMessageControl",
    "GetCurrentPriceOptions",
    "IntervalChannel",
    "MessageConfirmationControl",
    "MessageControl",
    "MessageImportance",
    "MessageResponse",
    "MessageText",
    "MessageTransmission",
    "Messaging",
    "Metering",
    "Price",
    "PriceClientAttributeDefs",
    "PriceControl",
    "PriceMatrixEntry",
    "ProfileStatus",
    "PublishBlockPeriodSE11",
    "PublishBlockPeriodSE12",
    "Signature",
    "SignatureType",
    "TierLabel",
    "Time",
    "FrameCodecError",
    "FrameSink",
    "SeFrames",
    "cluster_class",
    "decode_publish_block_period",
    "install",
]
