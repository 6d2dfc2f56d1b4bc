"""The attribute table of a simulated node: typed values and their reporting configuration.

Values are typed by the zigpy cluster's `AttributeDefs`, looked up when used (the SE library's
classes first, then zigpy's cluster registry).
Reporting follows ZCL r8 §2.5.7 (Configure Reporting) and §2.5.11 (Report Attributes):
a report is due on a reportable change once `min_interval` has passed, and every
`max_interval` (0 = no periodic reports, 0xFFFF = reporting off).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

import zigpy.zcl
from zigpy.zcl import foundation

from .se.clusters import cluster_class as se_cluster_class

LOGGER = logging.getLogger(__name__)

REPORTING_OFF = 0xFFFF

Address = tuple[int, int]  # (NWK address, endpoint)


def lookup_cluster(cluster: type[zigpy.zcl.Cluster] | int) -> type[zigpy.zcl.Cluster]:
    """The zigpy cluster class for a class or a cluster ID, resolved at call time.

    The SE library's own table comes first (its classes are not in zigpy's registry), then
    zigpy's registry.
    """
    if isinstance(cluster, type) and issubclass(cluster, zigpy.zcl.Cluster):
        return cluster
    cluster_id = int(cluster)
    se_class = se_cluster_class(cluster_id)
    if se_class is not None:
        return se_class
    registered = zigpy.zcl.Cluster._registry.get(cluster_id)
    if registered is not None:
        return registered
    for (start, end), cls in zigpy.zcl.Cluster._registry_range.items():
        if start <= cluster_id <= end:
            return cls
    raise KeyError(f"no zigpy cluster class is registered for cluster 0x{cluster_id:04X}")


def _is_analog(attr_def: foundation.ZCLAttributeDef) -> bool:
    try:
        data_type = foundation.DataType.from_type_id(attr_def.zcl_type)
    except (KeyError, ValueError):
        return False
    return data_type.type_class is foundation.DataClass.Analog


def coerce(attr_def: foundation.ZCLAttributeDef, value: Any) -> Any:
    """`value` as an instance of the attribute's zigpy type (ValueError if it cannot be)."""
    if isinstance(value, attr_def.type):
        return value
    try:
        return attr_def.type(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"value {value!r} does not fit attribute {attr_def.name}"
            f" (0x{attr_def.id:04X}, {attr_def.type.__name__})"
        ) from err


@dataclasses.dataclass
class _Reporting:
    """Mutable per-attribute reporting state, owned by the store."""

    min_interval: int
    max_interval: int
    reportable_change: Any
    source: Address
    last_value: Any = None
    last_sent: float | None = None
    pending: bool = True  # a first report goes out right after configuration


@dataclasses.dataclass(frozen=True)
class DueReport:
    """Attributes of one cluster that must be reported now, and to whom by default."""

    endpoint_id: int
    cluster_id: int
    source: Address
    attributes: tuple[foundation.Attribute, ...]


class AttributeStore:
    """Server attribute values per (endpoint, cluster), with Configure Reporting state."""

    def __init__(self) -> None:
        self._values: dict[tuple[int, int], dict[int, Any]] = {}
        self._reporting: dict[tuple[int, int, int], _Reporting] = {}
        # Attributes computed when read (e.g. the Time cluster's Time: current at read time).
        self._computed: dict[tuple[int, int, int], tuple[foundation.ZCLAttributeDef, Callable[[], Any]]] = {}

    def add_cluster(self, endpoint_id: int, cluster_id: int) -> None:
        """Declare a server cluster; it starts with no attributes."""
        self._values.setdefault((endpoint_id, cluster_id), {})

    def has_cluster(self, endpoint_id: int, cluster_id: int) -> bool:
        return (endpoint_id, cluster_id) in self._values

    def _table(self, endpoint_id: int, cluster_id: int) -> dict[int, Any]:
        try:
            return self._values[(endpoint_id, cluster_id)]
        except KeyError:
            raise KeyError(
                f"endpoint {endpoint_id} has no server cluster 0x{cluster_id:04X}"
            ) from None

    def set(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attribute: int | str,
        value: Any,
    ) -> foundation.ZCLAttributeDef:
        """Store a value; a configured report becomes pending if the change is reportable."""
        cls = lookup_cluster(cluster)
        try:
            attr_def = cls.find_attribute(attribute)
        except KeyError:
            raise KeyError(
                f"cluster {cls.__name__} (0x{cls.cluster_id:04X}) has no attribute {attribute!r}"
            ) from None
        table = self._table(endpoint_id, cls.cluster_id)
        typed = coerce(attr_def, value)
        table[attr_def.id] = typed
        config = self._reporting.get((endpoint_id, cls.cluster_id, attr_def.id))
        if config is not None and self._is_reportable_change(attr_def, config, typed):
            config.pending = True
        return attr_def

    def set_computed(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attribute: int | str,
        compute: Callable[[], Any],
    ) -> foundation.ZCLAttributeDef:
        """Serve an attribute from ``compute()`` at every read (and ``get``).

        A value that changes continuously, such as the Time cluster's Time (ZCL §3.12), is
        only right when computed at the moment it is read; a stored copy would be as old as
        its last update.
        """
        cls = lookup_cluster(cluster)
        attr_def = cls.find_attribute(attribute)
        self._computed[(endpoint_id, cls.cluster_id, attr_def.id)] = (attr_def, compute)
        self.set(endpoint_id, cls, attr_def.id, compute())
        return attr_def

    def _current(self, endpoint_id: int, cluster_id: int, attribute_id: int) -> Any:
        table = self._table(endpoint_id, cluster_id)
        computed = self._computed.get((endpoint_id, cluster_id, attribute_id))
        if computed is not None:
            attr_def, compute = computed
            table[attribute_id] = coerce(attr_def, compute())
        return table[attribute_id]

    def get(self, endpoint_id: int, cluster_id: int, attribute_id: int) -> Any:
        """The value (KeyError if the attribute is not present); computed ones are computed now."""
        return self._current(endpoint_id, cluster_id, attribute_id)

    def values(self, endpoint_id: int, cluster_id: int) -> dict[int, Any]:
        """A copy of one cluster's attribute values by ID."""
        return dict(self._table(endpoint_id, cluster_id))

    def read(
        self, endpoint_id: int, cluster_id: int, attribute_ids: Iterable[int]
    ) -> list[foundation.ReadAttributeRecord]:
        """Read Attributes records; unknown attributes get UNSUPPORTED_ATTRIBUTE."""
        table = self._table(endpoint_id, cluster_id)
        cls = _maybe_cluster(cluster_id)
        records = []
        for attr_id in attribute_ids:
            attr_def = _maybe_attribute(cls, attr_id)
            if attr_id not in table or attr_def is None:
                records.append(
                    foundation.ReadAttributeRecord(
                        attrid=attr_id, status=foundation.Status.UNSUPPORTED_ATTRIBUTE
                    )
                )
                continue
            records.append(
                foundation.ReadAttributeRecord(
                    attrid=attr_id,
                    status=foundation.Status.SUCCESS,
                    value=foundation.TypeValue(
                        type=attr_def.zcl_type, value=self._current(endpoint_id, cluster_id, attr_id)
                    ),
                )
            )
        return records

    def write(
        self,
        endpoint_id: int,
        cluster_id: int,
        attributes: Iterable[foundation.Attribute],
        *,
        undivided: bool = False,
    ) -> list[foundation.WriteAttributesStatusRecord]:
        """Write Attributes (§2.5.3): per-record status; undivided writes all or nothing."""
        table = self._table(endpoint_id, cluster_id)
        cls = _maybe_cluster(cluster_id)
        accepted: list[tuple[foundation.ZCLAttributeDef, Any]] = []
        results = []
        for record in attributes:
            attr_def = _maybe_attribute(cls, record.attrid)
            status = foundation.Status.SUCCESS
            if attr_def is None or record.attrid not in table:
                status = foundation.Status.UNSUPPORTED_ATTRIBUTE
            elif not attr_def.access & foundation.ZCLAttributeAccess.Write:
                status = foundation.Status.READ_ONLY
            elif record.value.type != attr_def.zcl_type:
                status = foundation.Status.INVALID_DATA_TYPE
            else:
                try:
                    accepted.append((attr_def, coerce(attr_def, record.value.value)))
                except ValueError:
                    status = foundation.Status.INVALID_VALUE
            results.append(
                foundation.WriteAttributesStatusRecord(status=status, attrid=record.attrid)
            )
        if undivided and any(r.status != foundation.Status.SUCCESS for r in results):
            return results
        for attr_def, value in accepted:
            self.set(endpoint_id, cluster_id, attr_def.id, value)
        return results

    def configure(
        self,
        endpoint_id: int,
        cluster_id: int,
        config: foundation.AttributeReportingConfig,
        source: Address,
    ) -> foundation.Status:
        """Configure Reporting for one attribute record; returns the record's status."""
        key = (endpoint_id, cluster_id, config.attrid)
        attr_def = _maybe_attribute(_maybe_cluster(cluster_id), config.attrid)
        if attr_def is None or config.attrid not in self._table(endpoint_id, cluster_id):
            return foundation.Status.UNSUPPORTED_ATTRIBUTE
        if config.direction == foundation.ReportingDirection.ReceiveReports:
            return foundation.Status.SUCCESS  # we never expect reports, nothing to time out
        if config.datatype != attr_def.zcl_type:
            return foundation.Status.INVALID_DATA_TYPE
        if config.max_interval == REPORTING_OFF:
            self._reporting.pop(key, None)
            return foundation.Status.SUCCESS
        if config.max_interval and config.min_interval > config.max_interval:
            return foundation.Status.INVALID_VALUE
        self._reporting[key] = _Reporting(
            min_interval=config.min_interval,
            max_interval=config.max_interval,
            reportable_change=getattr(config, "reportable_change", None),
            source=source,
        )
        return foundation.Status.SUCCESS

    def reporting_config(
        self, endpoint_id: int, cluster_id: int, attribute_id: int
    ) -> tuple[int, int, Any] | None:
        """(min_interval, max_interval, reportable_change) or None if not configured."""
        config = self._reporting.get((endpoint_id, cluster_id, attribute_id))
        if config is None:
            return None
        return config.min_interval, config.max_interval, config.reportable_change

    def _is_reportable_change(
        self, attr_def: foundation.ZCLAttributeDef, config: _Reporting, value: Any
    ) -> bool:
        if config.last_sent is None:
            return True
        if value == config.last_value:
            return False
        if not _is_analog(attr_def) or config.reportable_change is None:
            return True
        try:
            return abs(value - config.last_value) >= config.reportable_change
        except TypeError:
            return True

    def _due_at(self, config: _Reporting) -> float | None:
        if config.last_sent is None:
            return float("-inf")
        times = []
        if config.pending:
            times.append(config.last_sent + config.min_interval)
        if config.max_interval:
            times.append(config.last_sent + config.max_interval)
        return min(times) if times else None

    def next_due(self) -> float | None:
        """The earliest time (monotonic seconds) a report falls due, or None."""
        times = [t for c in self._reporting.values() if (t := self._due_at(c)) is not None]
        return min(times) if times else None

    def take_due(self, now: float) -> list[DueReport]:
        """Reports due at `now`, grouped per cluster; they count as sent."""
        grouped: dict[tuple[int, int, Address], list[foundation.Attribute]] = {}
        for (endpoint_id, cluster_id, attr_id), config in self._reporting.items():
            due_at = self._due_at(config)
            if due_at is None or due_at > now:
                continue
            attr_def = _maybe_attribute(_maybe_cluster(cluster_id), attr_id)
            value = self._values[(endpoint_id, cluster_id)].get(attr_id)
            if attr_def is None or value is None:
                continue
            grouped.setdefault((endpoint_id, cluster_id, config.source), []).append(
                foundation.Attribute(
                    attrid=attr_id,
                    value=foundation.TypeValue(type=attr_def.zcl_type, value=value),
                )
            )
            config.last_value = value
            config.last_sent = now
            config.pending = False
        return [
            DueReport(endpoint_id=ep, cluster_id=cid, source=src, attributes=tuple(attrs))
            for (ep, cid, src), attrs in grouped.items()
        ]


def _maybe_cluster(cluster_id: int) -> type[zigpy.zcl.Cluster] | None:
    try:
        return lookup_cluster(cluster_id)
    except KeyError:
        return None


def _maybe_attribute(
    cls: type[zigpy.zcl.Cluster] | None, attr_id: int
) -> foundation.ZCLAttributeDef | None:
    if cls is None:
        return None
    try:
        return cls.find_attribute(attr_id)
    except KeyError:
        return None
