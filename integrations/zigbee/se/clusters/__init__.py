"""ZigBee Smart Energy 1.x clusters for zigpy: Price, DRLC, Messaging, Metering.

Protocol only: this package imports zigpy and the standard library, never ``ems``.

zigpy keeps one global registry, ``zigpy.zcl.Cluster._registry``, filled by
``Cluster.__init_subclass__`` and keyed by cluster ID; the last class defined for an ID
wins. zigpy's own stubs are defined when ``zigpy.zcl.clusters`` is imported, which the
modules below do first, so after importing this package the registry maps 0x0700,
0x0701, 0x0702 and 0x0703 to these classes and ``Cluster.from_id`` (and so every
endpoint zigpy builds) uses them. ``ensure_registered()`` re-asserts that mapping in
case something imported later redefines one of these IDs.

zigpy's informational ``zigpy.zcl.clusters.CLUSTERS_BY_ID`` / ``CLUSTERS_BY_NAME``
tables are left pointing at zigpy's classes: they are built once at zigpy import time
and nothing in zigpy uses them to create clusters.

The Time cluster (0x000A) is zigpy's ``zigpy.zcl.clusters.general.Time``, unchanged.
"""

from zigpy.zcl import Cluster
from zigpy.zcl.clusters.general import Time

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


def ensure_registered() -> None:
    """Point zigpy's cluster registry at this package's SE classes (idempotent)."""
    for cluster in SE_CLUSTERS:
        Cluster._registry[cluster.cluster_id] = cluster


ensure_registered()

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
    "decode_publish_block_period",
    "ensure_registered",
]
