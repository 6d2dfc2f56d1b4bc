"""Rainforest Automation's meter bridges: devices that have joined the utility meter's ZigBee HAN
and re-expose its Smart Energy data in a format of their own (spec ``han-bridges.md`` §1-2).

* the **EMU-2** (and the older RAVEn stick) over USB serial: a stream of XML fragments
  (``emu2_xml``: the wire; ``emu2_link``: the link to the meter; ``emu2``: the ``emu2:`` section,
  its setup and the Commissioning page's "find and test");
* the **EAGLE-200 / EAGLE 3** over the LAN: a local HTTP API (``eagle*``).

Both are meter sources (``ems.meter_source``): they publish the same domain events as the ZigBee
SE link, so the cost engine, rules, DR, dashboard and display work unchanged on their data.
"""
