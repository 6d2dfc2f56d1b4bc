"""The dashboard's demand tile: the cycle's highest demand, when it was and what it adds to the bill,
on a rate with demand charges, fitting every screen in every language (as test_page_layouts checks
the pages). A rate without demand charges shows no such tile (the other dashboard tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import CONFIG, FAST_SCENARIO, RATES, running_appliance
from tests.e2e.test_page_layouts import LANGUAGES, SIZES, _measure
from tests.web.browser import chromium

pytestmark = pytest.mark.timeout(300)

DEMAND_PLAN = """
  GS-DEMAND:
    label: "Small business with demand charges"
    currency: USD
    billing_cycle: {start_day: 1}
    versions:
      - effective_from: 2024-01-01
        time_of_use:
          all-year:
            weekday:
              - {period: off-peak, start: "21:00", end: "16:00", price_per_kwh: 0.14}
              - {period: on-peak, start: "16:00", end: "21:00", price_per_kwh: 0.29}
        demand_charges:
          window_minutes: 15
          charges:
            - {label: "Facility demand", price_per_kw: 9.80}
            - {label: "On-peak demand", price_per_kw: 14.20, periods: [on-peak]}
"""

WORDS = {"en": "adds", "es": "suma", "zh": "账单"}


async def test_the_demand_tile_shows_peak_when_and_charge_on_every_screen(tmp_path: Path, output_dir: Path):
    rates = tmp_path / "rates.yaml"
    rates.write_text(RATES.read_text() + DEMAND_PLAN)
    config = CONFIG.replace("plan: TOU-D-T", "plan: GS-DEMAND").replace(str(RATES), str(rates))
    problems: list[str] = []
    async with running_appliance(tmp_path, FAST_SCENARIO, config_text=config) as appliance, chromium() as browser:
        await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
        body = await appliance.get("/api/v1/cost?period=cycle")
        peaks = body["cost"]["demand"]
        assert [d["label"] for d in peaks] == ["Facility demand", "On-peak demand"]
        assert peaks[0]["peak_kw"] > 0 and peaks[0]["at"]
        page = await (await browser.new_context(reduced_motion="reduce")).new_page()
        await appliance.sign_in(page)
        for language in LANGUAGES:
            await page.goto(appliance.url + "/settings")
            await page.select_option("#language", language)
            await page.click("form[action='/settings'] button[type=submit]")
            await page.wait_for_selector(f"html[lang={language}]")
            for width, height in SIZES:
                await page.set_viewport_size({"width": width, "height": height})
                await page.goto(appliance.url + "/")
                await page.wait_for_selector("#demand-tile:not([hidden])")
                await page.wait_for_function("document.getElementById('cost-demand').textContent.includes('kW')")
                # The rate's summary lists its demand charges too (a price per kW of the highest 15 minutes).
                await page.wait_for_function("document.getElementById('rate-periods').textContent.includes('15')")
                when = await page.text_content("#cost-demand-when")
                assert "$" in when and WORDS[language] in when, when
                await page.eval_on_selector("#cost-title", "e => e.scrollIntoView()")
                problems += await _measure(page, output_dir, f"dashboard-demand-{language}-{width}x{height}")
                await page.locator("#cost-tiles").screenshot(path=str(output_dir / f"tiles-{language}-{width}x{height}.png"))
    assert not problems, "\n".join(problems)
