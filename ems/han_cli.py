"""``ems han ...``: an installer in the field provisions the home's devices through the running appliance.

    ems han permit [--seconds N] [--install-code IEEE=CODE ...]   open joining (with install codes)
    ems han devices                                               the devices found, what they can do
    ems han set DEVICE [--name N] [--location L] [--program P ...] [--send]
    ems han test [DEVICE]                                         round trip, link quality, counters
    ems han scan                                                  the network and its channel
    ems han log [--device D] [--stage S] [--result R] [--format text|csv|json]

They talk to the appliance's API (``/api/v1/provision``) with a token, as a field installer's
laptop would over the home's network, rather than opening the store or the radio themselves: the
appliance owns its radio, and a second process on it would take the radio from it. The token comes
from ``--token``, else ``EMS_TOKEN``, else the demo's ``demo-api-token`` file in ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ems.errors import EmsError

DEFAULT_URL = "http://127.0.0.1:8080"


def add_han_command(sub: Any, default_data_dir: Path) -> None:
    han = sub.add_parser("han", help="add and test the home's devices through the running appliance")
    han.add_argument("--url", default=os.environ.get("EMS_URL", DEFAULT_URL), help=f"the appliance (default {DEFAULT_URL})")
    han.add_argument("--token", help="an API token of the owner or installer (default: $EMS_TOKEN)")
    han.add_argument("--data-dir", default=str(default_data_dir), help="where the demo keeps its token")
    actions = han.add_subparsers(dest="han_command", required=True)
    permit = actions.add_parser("permit", help="open joining for a while")
    permit.add_argument("--seconds", type=int, default=120, help="how long (0-254 s; 0 closes it)")
    permit.add_argument("--install-code", action="append", default=[], metavar="IEEE=CODE",
                        help="admit this device with its install code (repeat for more)")
    permit.add_argument("--wait", action="store_true", help="stay and list the devices as they join")
    actions.add_parser("devices", help="the devices found, with what they can do")
    choose = actions.add_parser("set", help="name a device, place it, choose its programs")
    choose.add_argument("device")
    choose.add_argument("--name")
    choose.add_argument("--location")
    choose.add_argument("--program", action="append", choices=("load_control", "pricing", "none"),
                        help="a program it takes part in (repeat; 'none' leaves it out)")
    choose.add_argument("--send", action="store_true", help="send it its program settings and wait for its answer")
    test = actions.add_parser("test", help="test one device's link, or every device's")
    test.add_argument("device", nargs="?")
    actions.add_parser("scan", help="the home network's channel and devices")
    log = actions.add_parser("log", help="the provisioning log")
    log.add_argument("--device")
    log.add_argument("--stage")
    log.add_argument("--result")
    log.add_argument("--format", choices=("text", "csv", "json"), default="text")


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get("EMS_TOKEN")
    if token:
        return token
    path = Path(args.data_dir) / "demo-api-token"
    if path.is_file():
        return path.read_text().strip()
    raise EmsError("give an API token with --token or EMS_TOKEN (make one under Account > API tokens)")


class _Api:
    def __init__(self, url: str, token: str) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                             timeout=aiohttp.ClientTimeout(total=60))

    async def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        try:
            async with self.session.request(method, self.url + path, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    try:
                        reason = json.loads(text).get("error", text)
                    except ValueError:
                        reason = text
                    raise EmsError(f"the appliance said: {reason}")
                return text if raw else json.loads(text)
        except self._aiohttp.ClientError as err:
            raise EmsError(f"cannot reach the appliance at {self.url}: {err}") from err

    async def close(self) -> None:
        await self.session.close()


def _words(name: str) -> str:
    return name.replace("_", " ")


def _print_devices(data: dict[str, Any]) -> None:
    join = data["join"]
    print(f"Joining is open for another {join['seconds_left']} s." if join["open"] else "Joining is closed.")
    if not data["devices"]:
        print("No device has joined yet.")
    for d in data["devices"]:
        can = ", ".join(_words(c) for c in d["capabilities"]) or "nothing the appliance uses"
        programs = ", ".join(_words(p) for p in d["programs"]) or "none"
        print(f"{d['name']} ({d['manufacturer']} {d['model']})")
        print(f"  device ID {d['device_id']}, address {d['address']}, joined with "
              f"{'an install code' if d['credentials'] == 'install_code' else 'the network key only'}")
        print(f"  can do: {can}")
        print(f"  location: {d['location'] or '-'}; programs: {programs}; {_words(d['readiness'])}"
              + (f", acknowledged {d['acknowledged_at']}" if d["acknowledged_at"] else ""))
        if d["device_time"]:
            print(f"  clock set to {d['device_time']}")


def _print_tests(data: dict[str, Any]) -> None:
    for r in data["results"]:
        if r["ok"]:
            print(f"{r['device_id']}: answered in {r['round_trip_ms']:.0f} ms; link quality {r['lqi']}, "
                  f"signal {r['rssi_dbm']} dBm; sent {r['sent']}, received {r['received']}, retries {r['retries']}, "
                  f"failures {r['failures']}")
        else:
            print(f"{r['device_id']}: FAILED ({_words(r['problem'])}). {r['guidance']}")
    n = data["network"]
    print(f"Network: sent {n['sent']}, received {n['received']}, retries {n['retries']}, failures {n['failures']}")


async def _run(args: argparse.Namespace) -> int:
    api = _Api(args.url, _token(args))
    try:
        command = args.han_command
        if command == "permit":
            codes = {}
            for item in args.install_code:
                ieee, sep, code = item.partition("=")
                if not sep:
                    raise EmsError(f"write an install code as IEEE=CODE, not {item!r}")
                codes[ieee] = code
            data = await api.call("POST", "/api/v1/provision/permit", {"seconds": args.seconds, "install_codes": codes})
            join = data["join"]
            print(f"Joining is open for {join['seconds_left']} s. Put each device in joining mode now."
                  if join["open"] else "Joining is closed.")
            if args.wait and join["open"]:
                seen: set[str] = set()
                for _ in range(join["seconds_left"] + 1):
                    for d in (await api.call("GET", "/api/v1/provision/devices"))["devices"]:
                        if d["device_id"] not in seen:
                            seen.add(d["device_id"])
                            print(f"Joined: {d['name']} ({d['device_id']}): "
                                  + (", ".join(_words(c) for c in d["capabilities"]) or "no feature the appliance uses"))
                    await asyncio.sleep(1)
        elif command == "devices":
            _print_devices(await api.call("GET", "/api/v1/provision/devices"))
        elif command == "set":
            body: dict[str, Any] = {"send": args.send}
            if args.name is not None:
                body["name"] = args.name
            if args.location is not None:
                body["location"] = args.location
            if args.program is not None:
                body["programs"] = [p for p in args.program if p != "none"]
            d = await api.call("POST", f"/api/v1/provision/devices/{args.device}", body)
            print(f"{d['name']}: programs {', '.join(_words(p) for p in d['programs']) or 'none'}; {_words(d['readiness'])}")
        elif command == "test":
            _print_tests(await api.call("POST", "/api/v1/provision/test",
                                        {"device_id": args.device} if args.device else {}))
        elif command == "scan":
            s = await api.call("GET", "/api/v1/provision/scan")
            print(f"Home network on channel {s['channel']}, network ID {s['pan_id']} ({s['extended_pan_id']}), "
                  f"{s['devices']} device(s); joining {'open' if s['permit_joining'] else 'closed'}")
            if s["note"]:
                print(f"Note: {s['note']}")
            for channel, energy in sorted(s["energy_by_channel"].items(), key=lambda kv: int(kv[0])):
                print(f"  channel {channel}: {energy:.0f}")
        elif command == "log":
            query = "&".join(f"{k}={v}" for k, v in (("device", args.device), ("stage", args.stage),
                                                     ("result", args.result)) if v)
            if args.format in ("csv", "json"):
                sys.stdout.write(await api.call("GET", f"/api/v1/provision/log?format={args.format}&{query}", raw=True))
            else:
                for e in (await api.call("GET", f"/api/v1/provision/log?{query}"))["entries"]:
                    print(f"{e['at'][:19]} {e['device_id'] or 'network':23} {e['stage']:12} {e['result']:7} "
                          f"{e['message']}: {e['detail']}")
        return 0
    finally:
        await api.close()


def run_han_command(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
