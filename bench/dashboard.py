"""The dashboard in a real browser: first render, first-load size, and WebSocket frame -> DOM.

The whole appliance runs in this process against the simulated meter (as bench/ingest.py), with
an owner account and a rate plan. Debian's Chromium (Playwright, never a downloaded browser)
signs in through the login form, then:

1. First render: a fresh load of the dashboard with the browser cache cleared; Navigation
   Timing's domContentLoadedEventEnd and loadEventEnd, from navigationStart (target < 1 s).
2. First-load size: transferSize of the navigation and of every resource it fetched (styles,
   scripts, the vendored chart library, the API calls) once the page settled (target < 300 KB).
3. Meter report -> screen: the page records performance.now() when a WebSocket frame of the
   'meter' topic arrives (a listener that runs before the page's own onmessage) and again when
   #demand's text changes (a MutationObserver); the meter changes its demand 20 times a second
   (target p99 < 100 ms).

    python bench/dashboard.py [--reports 120]
Last line: first_render_ms=.. first_load_kb=.. ws_to_dom_p99_ms=..
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ems.accounts import Accounts, Role  # noqa: E402
from ems.cli import compose, read_config  # noqa: E402
from integrations.simulator import SimulatedHan, scenario_from_dict  # noqa: E402
from integrations.zigbee.se.clusters import Metering  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USER, PASSWORD = "bench", "bench-password"
RATE_PER_S = 20
CONFIG = f"""
site: {{name: Bench home, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{REPO / 'config' / 'rates.yaml'}"}}
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{report_interval_s: 1, stale_after_s: 30}}
"""

# Installed before any page script: time each 'meter' frame and the #demand change it causes.
PROBE = """
(() => {
  const probe = window.__probe = { pending: null, latencies: [] };
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("message", (ev) => {
      const at = performance.now();  // before the page's own onmessage runs
      try { if (JSON.parse(ev.data).topic === "meter") probe.pending = at; } catch (e) { /* not JSON */ }
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  document.addEventListener("DOMContentLoaded", () => {
    const target = document.getElementById("demand");
    if (!target) return;
    new MutationObserver(() => {
      if (probe.pending === null) return;
      probe.latencies.push(performance.now() - probe.pending);
      probe.pending = null;
    }).observe(target, { childList: true, characterData: true, subtree: true });
  });
})();
"""

TIMING = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  return {
    dcl: nav.domContentLoadedEventEnd - nav.startTime,
    load: nav.loadEventEnd - nav.startTime,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + (r.transferSize || 0), 0),
    resources: resources.length,
  };
}
"""


async def measure(reports: int) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(CONFIG)
        config = read_config(folder)
        simulator = SimulatedHan(scenario_from_dict({"meter": {"report_interval": "10m"}}))
        hub, web = compose(config, Path(tmp) / "data", simulator=simulator)
        await hub.start()
        try:
            await _wait_online(hub)
            await Accounts(hub.store).create_user(USER, PASSWORD, Role.OWNER)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    await context.add_init_script(PROBE)
                    page = await context.new_page()
                    await _sign_in(page, web.url)
                    timing = await _first_load(context, page, web.url)
                    latencies = await _ws_to_dom(page, simulator, reports)
                finally:
                    await browser.close()
        finally:
            await hub.stop()
    if len(latencies) < 2:
        raise SystemExit(f"only {len(latencies)} meter reports reached the page")
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    first_render = timing["dcl"]
    kb = timing["bytes"] / 1024
    print(f"First render of the dashboard after login (cold cache, Navigation Timing): DOMContentLoaded "
          f"{timing['dcl']:.0f} ms, load {timing['load']:.0f} ms after navigationStart (target < 1000 ms).")
    print(f"Transferred on that first load: {kb:.1f} KB over the page and {timing['resources']} resources "
          f"(target < 300 KB).")
    print(f"Meter report from the WebSocket frame to the #demand update, {len(latencies)} reports at "
          f"{RATE_PER_S}/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms (target p99 < 100 ms).")
    print(f"first_render_ms={first_render:.0f} first_load_kb={kb:.1f} ws_to_dom_p99_ms={p99:.2f}")


async def _wait_online(hub) -> None:
    for _ in range(400):
        meter = hub.state.meters.get("main")
        if meter is not None and meter.link.value == "online" and meter.last_interval is not None:
            return
        await asyncio.sleep(0.05)
    raise SystemExit("the meter link did not come online")


async def _sign_in(page, url: str) -> None:
    await page.goto(url + "/login")
    await page.fill("#username", USER)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(url + "/")


async def _first_load(context, page, url: str) -> dict:
    """A fresh load of the dashboard with an empty HTTP cache (the session cookie kept)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.clearBrowserCache")
    await page.goto(url + "/", wait_until="load")
    # Let the first API calls (cost, tariff, usage) and the chart finish before adding up.
    await page.wait_for_selector("#usage-chart canvas", timeout=15000)
    await page.wait_for_function("document.getElementById('cost-cycle').textContent !== '–'", timeout=15000)
    await asyncio.sleep(0.5)
    return await page.evaluate(TIMING)


async def _ws_to_dom(page, simulator: SimulatedHan, reports: int) -> list[float]:
    await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
    await page.evaluate("window.__probe.latencies = []; window.__probe.pending = null")
    node = simulator.node
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(reports):
        node.set_attribute(1, Metering, "instantaneous_demand", 100_000 + i)  # reported on change
        delay = start + (i + 1) / RATE_PER_S - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.sleep(0.5)
    return await page.evaluate("window.__probe.latencies")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=120)
    args = parser.parse_args()
    asyncio.run(measure(args.reports))


if __name__ == "__main__":
    main()
