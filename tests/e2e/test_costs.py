"""C6 3.2 step 7: cost "as read" from the meter's own intervals, on the API and the page."""

from __future__ import annotations

import pytest

from tests.web.browser import chromium


async def test_a_day_of_interval_history_is_read_from_the_meter_at_link_up(appliance):
    async def enough():
        await appliance.hub.store.flush()
        meter = appliance.hub.state.meters["main"]
        if meter.last_interval is None:
            return False
        from datetime import timedelta
        stored = await appliance.hub.store.intervals("main", meter.last_interval.end - timedelta(days=2), meter.last_interval.end)
        return len(stored) >= 24 * 60 - 5
    await appliance.wait_until(enough, timeout_s=20, what="a day of 1-minute intervals")


async def test_cost_of_the_last_interval_matches_its_energy_and_price(appliance):
    await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
    report = await appliance.get("/api/v1/cost?period=interval")
    interval = appliance.hub.state.meters["main"].last_interval
    cost = report["cost"]
    assert cost["currency"] == "USD"
    assert cost["energy_kwh"] == pytest.approx(interval.consumed_kwh, abs=0.001)
    assert cost["generated_kwh"] == pytest.approx(interval.generated_kwh, abs=0.001)
    # TOU-D-T prices are 0.27-0.48 USD/kWh plus a block adder; credit 0.08 USD/kWh generated.
    kwh = interval.consumed_kwh
    assert 0.27 * kwh - 0.005 <= cost["energy_cost"] <= 0.60 * kwh + 0.005  # rounded to the cent


async def test_cycle_cost_shows_tiers_gaps_and_a_projection(appliance):
    await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
    report = await appliance.get("/api/v1/cost?period=cycle")
    cost = report["cost"]
    assert cost["intervals_read"] > 0
    assert cost["missing_intervals"] > 0  # before the meter's day of history: a gap, not an estimate
    assert sum(t["energy_kwh"] for t in cost["tiers"]) == pytest.approx(cost["energy_kwh"], abs=0.01)
    assert report["projection"]["total_cost"] >= cost["total_cost"] - 0.01
    assert (await appliance.http.get(appliance.url + "/api/v1/cost?period=fortnight")).status == 400


async def test_cost_panel_on_the_page_shows_the_figures(appliance, output_dir):
    await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('cost-cycle').textContent.includes('$')")
        await page.wait_for_function("document.querySelectorAll('#cost-tiers tr td:not(.empty)').length >= 3")
        assert "$" in await page.text_content("#cost-projection")
        await page.screenshot(path=str(output_dir / "live-cost.png"), full_page=True)


async def test_tariff_shows_what_the_meter_published_about_its_rate(appliance):
    await appliance.wait_until(lambda: appliance.hub.state.meter_rates.get("main"), what="the meter's rate")
    body = await appliance.get("/api/v1/tariff")
    assert body["plan"] == "TOU-D-T"
    (meter,) = body["meter"]
    assert meter["block_thresholds_kwh"] == [350.0]
    assert meter["tier_labels"] == {"2": "all-day"}
    assert meter["billing_period"]["start"] is not None and meter["billing_period"]["end"] is not None
    assert meter["rate_label"] == "TOU-TEST"


async def test_billing_period_and_cpp_event_from_the_meter_are_taken_in(appliance):
    from integrations.zigbee.se import codec
    from integrations.zigbee.se.clusters import Price

    await appliance.wait_until(lambda: appliance.hub.state.meter_rates.get("main"), what="the meter's rate")
    sim = appliance.simulator.meter
    now = codec.datetime_to_utc_time(sim.clock())
    await sim.send_raw(Price, "publish_billing_period", provider_id=1, issuer_event_id=77,
                       billing_period_start_time=now, billing_period_duration=1,
                       billing_period_duration_type=0x03, tariff_type=0)  # one month
    await sim.send_raw(Price, "publish_cpp_event", provider_id=1, issuer_event_id=88, start_time=now + 3600,
                       duration_in_minutes=120, tariff_type=0, cpp_price_tier=0, cpp_auth=0)
    frame = await appliance.simulator.node.wait_for("cpp_event_response", timeout_s=5)
    assert frame.fields["issuer_event_id"] == 88 and frame.fields["cpp_auth"] == 1
    (meter,) = (await appliance.get("/api/v1/tariff"))["meter"]
    start, end = meter["billing_period"]["start"], meter["billing_period"]["end"]
    assert start[:7] != end[:7]  # a calendar month later
    assert meter["critical_peak_events"][0]["issuer_event_id"] == 88


async def test_rate_and_plan_comparison_are_on_the_page(appliance, output_dir):
    await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('rate-summary').textContent.includes('TOU-D-T')")
        assert "on-peak" in await page.text_content("#rate-periods")
        await page.focus("#whatif-button")
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.getElementById('whatif').textContent.includes('Cheapest')")
        text = await page.text_content("#whatif")
        assert "D-BASELINE" in text and "TOU-D-T" in text
        await page.screenshot(path=str(output_dir / "live-rate.png"), full_page=True)


async def test_projected_bill_over_the_threshold_raises_a_local_usage_warning_once(tmp_path):
    from tests.e2e.conftest import CONFIG, running_appliance

    config = CONFIG.replace('climate_zone: "10",', 'climate_zone: "10", warning_threshold_cost: 1.0,')
    async with running_appliance(tmp_path, config_text=config) as app:
        await app.online()

        def local_warnings():
            return [m for m in app.hub.state.messages.values()
                    if m.message.origin.value == "local" and m.message.text.startswith("Energy usage warning")]

        await app.wait_until(local_warnings, timeout_s=20, what="a local usage warning")
        messages = (await app.get("/api/v1/messages"))["messages"]
        (warning,) = [m for m in messages if m["origin"] == "local" and m["text"].startswith("Energy usage")]
        assert warning["text"].startswith("Energy usage warning")
        assert "projected" in warning["text"].lower()
        # Checking again raises nothing new: the warning is already held.
        assert await app.hub.integrations["bill_watch"].check("main") == []
        assert len(local_warnings()) == 1


async def test_daily_readings_are_priced_and_shown_as_estimated(appliance, output_dir):
    """Days read as one reading each (as a Green Button file's daily data holds them) before the
    meter's own history: the cost, the plan comparison and the usage chart say, in words, that
    those figures are estimated (spread evenly over each day), not read hour by hour."""
    from datetime import datetime, timedelta

    from ems.model import IntervalReading
    from tests.e2e.conftest import DAY, SITE_TZ

    days = [DAY - timedelta(days=k) for k in range(5, 2, -1)]  # 10-12 July, in the cycle from the 10th
    await appliance.hub.store.add_intervals([
        IntervalReading("main", datetime.combine(d, datetime.min.time(), SITE_TZ), 86400, 12.0) for d in days])
    await appliance.hub.store.flush()
    cost = (await appliance.get("/api/v1/cost?period=cycle"))["cost"]
    assert cost["estimated"] and cost["estimated_kwh"] == pytest.approx(36.0)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('cost-notes').textContent.includes('estimated')")
        assert "daily or monthly totals" in await page.text_content("#cost-notes")
        await page.click("button.range[data-range=cycle]")
        await page.wait_for_function("document.getElementById('usage-status').textContent.includes('estimated')")
        await page.focus("#whatif-button")
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.getElementById('whatif').textContent.includes('Cheapest')")
        assert "(estimated)" in await page.text_content("#whatif")
        await page.screenshot(path=str(output_dir / "live-estimated.png"), full_page=True)
