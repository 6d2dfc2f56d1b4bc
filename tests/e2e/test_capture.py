"""`--pcap`: every HAN frame is captured so that Wireshark decodes the Smart Energy traffic."""

from __future__ import annotations

import subprocess

from tests.conftest import require_tool
from tests.e2e.conftest import running_appliance

TSHARK = "/usr/bin/tshark"


def tshark_plain(pcap, *args):
    result = subprocess.run([TSHARK, "-r", str(pcap), *args], capture_output=True, text=True, check=True, timeout=60)
    return result.stdout


async def test_wireshark_decodes_the_smart_energy_commands_and_attributes(tmp_path, output_dir):
    require_tool(TSHARK, "decodes the pcap capture")
    pcap = output_dir / "han.pcap"
    async with running_appliance(tmp_path, pcap=pcap) as app:
        await app.online()
        await app.simulator.node.wait_for("report_event_status", timeout_s=10)
        await app.wait_until(lambda: app.hub.state.messages, what="a message")
        keys = app.simulator.capture_keys()
    # The meter's network is secured (NWK: the network key; SE frames, APS: the link key): Wireshark
    # reads it given the keys, as an installer's sniffer would (tests/integrations/zigbee/test_join.py:
    # and not without them).
    options = [arg for key, label in keys for arg in ("-o", f'uat:zigbee_pc_keys:"{key.hex()}","Normal","{label}"')]

    def tshark(pcap, *args):
        return tshark_plain(pcap, *options, *args)

    info = tshark(pcap, "-T", "fields", "-e", "_ws.col.Info")
    for expected in ("ZCL Price: Publish Price", "ZCL Messaging: Display Message", "Load Control Event",
                     "Report Event Status", "ZCL: Report Attributes", "ZCL Metering: Get Profile Response",
                     "Device Announcement", "Bind Request"):
        assert expected in info, f"{expected!r} not decoded in {pcap}"
    assert tshark(pcap, "-Y", "_ws.malformed") == ""
    assert tshark(pcap, "-Y", "_ws.expert") == "", "Wireshark's expert analysis found something to warn about"
    fields = tshark(pcap, "-Y", "zbee_zcl_se.drlc.issuer_id == 4101", "-T", "fields",
                    "-e", "zbee_zcl_se.drlc.duration_in_minutes", "-e", "zbee_zcl_se.drlc.criticality_level")
    assert fields.splitlines()[0].split("\t") == ["30", "0x03"]
    status = tshark(pcap, "-Y", "zbee_zcl_se.drlc.report_event.issuer_id == 4101", "-T", "fields",
                    "-e", "zbee_zcl_se.drlc.report_event.event_status")
    assert status.split() == ["0x01"]  # "Load Control Event command received"
