"""Shed groups: one Zigbee groupcast switches every plug of a device class in one frame on air.

At set-up every switch (an On/Off server beside a Groups server, ZCL §3.6) is made a member of
the shed group of its device class, ``SHED_GROUP_BASE`` + the class's bit (the DRLC device
classes, SE §2.4): the device is asked which groups it is in (Get Group Membership), left in
no other shed group (Remove Group) and added to its own (Add Group). Its answers are the
membership the EMS keeps (``HomeDevice.groups``); they are asked again at every set-up, so a
device that was reset or moved to another class is found as it is, and nothing needs storing.

``FanOut.switch_all`` carries out one switch command for many devices at once. A shed group
whose members are all to be switched the same way gets ONE groupcast (zigpy's ``Group``, APS
group addressing); each member's acknowledgement is its On/Off report (ZCL §2.5.11: a
configured attribute reports its change), and a member still silent a command timeout after
the last report came is switched by unicast, as is every device in no group, or in a group some
member of which is not to be switched (a device taken out of an event, opted out, or given
another target must not be switched by the groupcast). No groupcast goes out while a switch
that is not to be switched has not said since the start which groups it is in (it may still be
in one). Unicasts go out concurrently, within what the radio accepts (zigpy's
``max_concurrent_requests``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import zigpy.exceptions
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Groups, OnOff

from ems.errors import DeviceError
from ems.model import DeviceClass

if TYPE_CHECKING:
    from integrations.zigbee_home.device import HomeDevice

_LOGGER = logging.getLogger(__name__)

GROUPS = Groups.cluster_id
SHED_GROUP_BASE = 0x0E00  # 0x0E00 + the device class's bit: 0x0E07 for simple loads (0x0080)
SHED_GROUPS = range(SHED_GROUP_BASE, SHED_GROUP_BASE + 16)
MIN_GROUPCAST = 2  # one member is as well served by a unicast, which the device acknowledges


def shed_group(device_class: DeviceClass | int) -> int:
    """The shed group of a device class (its lowest bit, if it names several)."""
    value = int(device_class) & 0x0FFF
    if not value:
        raise ValueError("a device class names at least one class")
    return SHED_GROUP_BASE + (value & -value).bit_length() - 1


async def join_shed_group(device: HomeDevice, endpoint: Any, group: int,
                          bounded: Callable[[Any], Any]) -> frozenset[int]:
    """Make ``endpoint`` a member of ``group`` and of no other shed group; its groups, as it says.

    ``bounded`` bounds each request by the command timeout. A refusal (e.g. a full group table)
    leaves the device out of the group: it is then commanded by unicast, as before.
    """
    cluster = endpoint.in_clusters[GROUPS]
    response = await bounded(cluster.get_membership([]))
    groups = {int(g) for g in getattr(response, "groups", ())}
    for stale in sorted(g for g in groups if g in SHED_GROUPS and g != group):
        removed = await bounded(cluster.remove(stale))
        if _status(removed) in (foundation.Status.SUCCESS, foundation.Status.NOT_FOUND):
            groups.discard(stale)
    if group not in groups:
        added = await bounded(cluster.add(group, ""))
        status = _status(added)
        if status in (foundation.Status.SUCCESS, foundation.Status.DUPLICATE_EXISTS):
            groups.add(group)
        else:
            _LOGGER.warning("[%s] %s did not join shed group 0x%04X (%s); it is switched by unicast",
                            device.device_id, device.label, group, getattr(status, "name", status))
    return frozenset(groups)


def _status(response: Any) -> Any:
    status = getattr(response, "status", None)
    if status is None and isinstance(response, list | tuple) and response:
        status = response[0]
    try:
        return foundation.Status(int(status))
    except (TypeError, ValueError):
        return status


class FanOut:
    """One switch command to many devices of the home network: groupcasts where they fit, else unicasts."""

    def __init__(self, devices: Mapping[str, HomeDevice], app: Callable[[], Any],
                 lookup: Callable[[str], HomeDevice]) -> None:
        self._devices = devices
        self._app = app
        self._lookup = lookup  # raises DeviceError for a device that is not set up
        self.groupcasts = 0  # how many groupcasts went out (tests, diagnostics)

    def plan(self, device_ids: Iterable[str]) -> tuple[dict[int, list[str]], list[str]]:
        """Which devices a groupcast reaches (by group) and which need a unicast."""
        wanted = set(device_ids)
        members: dict[int, list[str]] = {}
        for device in self._devices.values():
            if device.groups is None:
                if device.groupable and device.device_id not in wanted:
                    # Not set up since the start: it may still be in a shed group from before, and a
                    # groupcast would switch it too. Until it says, every device goes by unicast.
                    return {}, sorted(wanted)
                continue
            for group in device.groups:
                if group in SHED_GROUPS:
                    members.setdefault(group, []).append(device.device_id)
        covered: dict[int, list[str]] = {}
        taken: set[str] = set()
        for group, ids in sorted(members.items()):
            if len(ids) >= MIN_GROUPCAST and wanted.issuperset(ids) and taken.isdisjoint(ids):
                if all(self._devices[d].ready and self._devices[d].connected for d in ids):
                    covered[group] = sorted(ids)
                    taken.update(ids)
        unicast = sorted(wanted - taken)
        return covered, unicast

    async def switch_all(self, device_ids: Iterable[str], on: bool) -> dict[str, DeviceError | None]:
        """Switch every device; per device, None once it confirmed, or the DeviceError it raised."""
        ids = list(dict.fromkeys(device_ids))
        covered, unicast = self.plan(ids)
        results: dict[str, DeviceError | None] = {}
        work = [self._groupcast(group, members, on, results) for group, members in covered.items()]
        work += [self._unicast(device_id, on, results) for device_id in unicast]
        await asyncio.gather(*work)
        return results

    async def _unicast(self, device_id: str, on: bool, results: dict[str, DeviceError | None]) -> None:
        try:
            await self._lookup(device_id).switch(on)
            results[device_id] = None
        except DeviceError as err:
            results[device_id] = err

    async def _groupcast(self, group: int, members: list[str], on: bool,
                         results: dict[str, DeviceError | None]) -> None:
        devices = [self._devices[d] for d in members]
        # A member already so will not report a change: it is confirmed by a unicast (which it answers).
        changing = [device for device in devices if device.last.get("on") is not on]
        confirmations = [device.expect_on(on) for device in changing]  # listening before it goes out
        try:
            app = self._app()
            if app is None:
                raise DeviceError("the home network is not up")
            cluster = app.groups.add_group(group).endpoint[OnOff.cluster_id]  # zigpy's group cluster
            command = OnOff.ServerCommandDefs.on if on else OnOff.ServerCommandDefs.off
            await cluster.request(False, command.id, command.schema, expect_reply=False,
                                  disable_default_response=True)  # Group.request: no answers
            self.groupcasts += 1
        except (DeviceError, zigpy.exceptions.ZigbeeException, OSError) as err:
            _LOGGER.warning("Groupcast to shed group 0x%04X failed (%s); switching its %d members one by one",
                            group, err, len(members))
            for confirmation in confirmations:
                confirmation.cancel()
            await asyncio.gather(*(self._unicast(d, on, results) for d in members))
            return
        unchanged = [device.device_id for device in devices if device not in changing]
        await asyncio.gather(self._confirm(changing, confirmations, on, results),
                             *(self._unicast(d, on, results) for d in unchanged))

    async def _confirm(self, devices: list[HomeDevice], confirmations: list[asyncio.Future[None]], on: bool,
                       results: dict[str, DeviceError | None]) -> None:
        """Each member's report confirms it. While reports keep coming the wait goes on (a busy
        radio delivers hundreds of them one after another); a member still silent once none has
        come for the command timeout (it missed the frame, or was reset out of the group) is
        switched by unicast."""
        if not devices:
            return
        timeout_s = min(device.command_timeout_s for device in devices)
        heard = asyncio.Event()
        left = [len(confirmations)]

        def confirmed(_future: asyncio.Future[None]) -> None:
            left[0] -= 1
            heard.set()

        for confirmation in confirmations:
            confirmation.add_done_callback(confirmed)
        while left[0]:
            heard.clear()
            try:
                await asyncio.wait_for(heard.wait(), timeout_s)
            except TimeoutError:
                break
        late = []
        for device, confirmation in zip(devices, confirmations, strict=True):
            if confirmation.done() and not confirmation.cancelled():
                results[device.device_id] = None
            else:
                confirmation.cancel()
                late.append(device)
        for device in late:
            _LOGGER.info("[%s] %s did not confirm the groupcast within %g s of the last report; switching "
                         "it by unicast", device.device_id, device.label, timeout_s)
        await asyncio.gather(*(self._unicast(device.device_id, on, results) for device in late))
