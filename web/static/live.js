// Live page: one WebSocket, a snapshot on connect, then a message per change.
// Reconnects by itself with backoff and greys out the figures while the data is stale.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const tz = document.body.dataset.timezone || undefined;
  // The page's language: its strings come in a JSON block the server renders (web/i18n.py).
  const I18N = (() => { try { return JSON.parse($("i18n").textContent); } catch (e) { return {}; } })();
  const LOCALE = I18N.locale || document.documentElement.lang || undefined;
  const t = (msgid, values) => {
    const text = (I18N.strings && I18N.strings[msgid]) || msgid;
    return values ? text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)) : text;
  };
  // Machine values the API sends, as the reader reads them.
  const STATUS = { scheduled: t("scheduled"), active: t("active"), completed: t("completed"), cancelled: t("cancelled") };
  const IMPORTANCE = { low: t("low"), medium: t("medium"), high: t("high"), critical: t("critical") };
  const CRITICALITY = { green: t("green"), level_1: t("level 1"), level_2: t("level 2"), level_3: t("level 3"),
    level_4: t("level 4"), level_5: t("level 5"), emergency: t("emergency"), planned_outage: t("planned outage"),
    service_disconnect: t("service disconnect") };
  const DEVICES = { hvac: t("heating and cooling"), strip_heater: t("strip heater"), water_heater: t("water heater"),
    pool_pump: t("pool pump"), smart_appliance: t("smart appliances"), irrigation_pump: t("irrigation pump"),
    commercial_load: t("commercial loads"), simple_load: t("simple loads"), exterior_lighting: t("exterior lighting"),
    interior_lighting: t("interior lighting"), electric_vehicle: t("electric vehicle"), generation: t("generation") };
  const PERIODS = { "off-peak": t("off-peak"), "on-peak": t("on-peak"), "mid-peak": t("mid-peak"),
    "super-off-peak": t("super off-peak"), "all-day": t("all day"), summer: t("summer"), winter: t("winter"),
    "all-year": t("all year"), weekday: t("weekdays"), weekend: t("weekends"), holiday: t("holidays") };
  const KINDS = { tiered: t("tiered"), "time-of-use": t("time-of-use"), "critical-peak": t("critical peak"),
    "peak-time-rebate": t("peak-time rebate"), hourly: t("hourly"), flat: t("flat") };
  const label = (map, value) => (value in map ? map[value] : String(value).replace(/_/g, " "));
  const state = { meters: [], prices: [], messages: [], events: [], health: null };
  let retryMs = 500;
  let socket = null;

  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(LOCALE,
    { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const when = (iso, timeStyle = "short") => {
    if (!iso) return "–";
    try { return new Date(iso).toLocaleString(LOCALE, { timeZone: tz, dateStyle: "medium", timeStyle }); }
    catch (e) { return new Date(iso).toLocaleString(LOCALE); }
  };
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls; if (text !== undefined) n.textContent = text; return n; };

  function renderMeter() {
    const m = state.meters[0];
    if (!m) return;
    $("demand").textContent = fmt(m.demand_kw, 3);
    $("demand-direction").textContent = m.demand_kw === null ? "\u00a0" :
      (m.demand_kw < 0 ? t("Sending power to the grid") : t("Drawing power from the grid"));
    $("delivered").textContent = fmt(m.summation_delivered_kwh, 3);
    $("received").textContent = fmt(m.summation_received_kwh, 3);
    const updated = $("updated");
    updated.textContent = m.last_reading_at ? when(m.last_reading_at, "medium") : t("never");
    if (m.last_reading_at) updated.setAttribute("datetime", m.last_reading_at);
    const link = $("link");
    const labels = { online: [t("Meter online"), "pill-ok"], stale: [t("Data stale"), "pill-bad"],
      offline: [t("Meter offline – retrying"), "pill-bad"], connecting: [t("Connecting to meter…"), "pill-wait"] };
    const [text, cls] = labels[m.link] || [m.link, "pill-wait"];
    link.textContent = text; link.className = "pill " + cls;
    document.body.classList.toggle("stale", m.link !== "online");
  }

  function renderPrice() {
    const p = state.prices[0] && state.prices[0].current;
    document.body.className = document.body.className.replace(/\btier-\d+\b/g, "").trim();
    if (!p) { $("price").textContent = "–"; $("price-detail").textContent = t("No price published"); return; }
    let money;
    try { money = new Intl.NumberFormat(LOCALE, { style: "currency", currency: p.currency, maximumFractionDigits: 4 }).format(p.price_per_kwh); }
    catch (e) { money = p.price_per_kwh + " " + p.currency; }
    $("price").textContent = money + " /kWh";
    const tier = !p.tier ? t("No tier") : p.number_of_tiers ? t("Tier {tier} of {tiers}", { tier: p.tier, tiers: p.number_of_tiers })
      : t("Tier {tier}", { tier: p.tier });
    const rate = p.rate_label || t("Rate");
    $("price-detail").textContent = `${rate} · ${tier}`;
    if (p.tier) document.body.classList.add("tier-" + p.tier);
  }

  function renderEvents() {
    const list = $("events"); keepFocus(list); list.replaceChildren();
    const shown = state.events.filter((e) => e.status !== "completed" && e.status !== "cancelled")
      .concat(state.events.filter((e) => e.status === "completed" || e.status === "cancelled").slice(-3));
    if (!shown.length) { list.append(el("li", "empty", t("No event announced."))); return; }
    for (const e of shown) {
      const li = el("li");
      const id = e.issuer_event_id;
      li.append(el("span", "tag tag-" + e.status, label(STATUS, e.status)), el("strong", "", t("Event {id}", { id })));
      const asks = [];
      const deg = (v) => fmt(v, Number.isInteger(v) ? 0 : 1);
      if (e.cooling_offset_c !== null) asks.push(t("cooling +{value} °C", { value: deg(e.cooling_offset_c) }));
      if (e.heating_offset_c !== null) asks.push(t("heating −{value} °C", { value: deg(e.heating_offset_c) }));
      if (e.cooling_setpoint_c !== null) asks.push(t("cool to {value} °C", { value: deg(e.cooling_setpoint_c) }));
      if (e.heating_setpoint_c !== null) asks.push(t("heat to {value} °C", { value: deg(e.heating_setpoint_c) }));
      if (e.average_load_adjustment_pct !== null) asks.push(t("load {value} %", { value: (e.average_load_adjustment_pct > 0 ? "+" : "") + e.average_load_adjustment_pct }));
      if (e.duty_cycle_pct !== null) asks.push(t("duty cycle {value} %", { value: e.duty_cycle_pct }));
      const minutes = t("{minutes} min", { minutes: e.duration_min });
      li.append(el("span", "meta", `${when(e.start)} – ${when(e.end)} · ${minutes} · ${label(CRITICALITY, e.criticality)}`));
      li.append(el("span", "meta", `${e.device_classes.map((d) => label(DEVICES, d)).join(", ")}${asks.length ? " · " + asks.join(", ") : ""}`));
      if (e.status === "active" || e.status === "scheduled") {
        const key = `event:${e.meter_id}:${e.issuer_event_id}`;
        const base = `/api/v1/events/${encodeURIComponent(e.meter_id)}/${e.issuer_event_id}/`;
        const row = el("div", "actions");
        if (e.participation === "opted_out") {
          li.children[1].after(el("span", "tag tag-opted_out", t("opted out")));
          row.append(actionButton(t("Opt back in"), t("Take part in event {id} again", { id }), key, "opt-in",
            base + "opt-in", null, "events", t("You take part in event {id} again.", { id })));
        } else {
          row.append(actionButton(t("Opt out"), t("Opt out of event {id}", { id }), key, "opt-out",
            base + "opt-out", null, "events", t("You opted out of event {id}; the utility is told.", { id })));
        }
        li.append(row);
      }
      list.append(li);
    }
    restoreFocus(list);
  }

  // -- actions: confirm or read a message, opt out of or back into an event -------------------
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let focusKey = null;  // the item whose button had the focus when the list was redrawn

  async function post(path, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf };
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method: "POST", credentials: "same-origin", headers,
      body: body ? JSON.stringify(body) : undefined });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
    return data;
  }

  function upsert(list, item, idKey) {
    const i = list.findIndex((x) => x.meter_id === item.meter_id && x[idKey] === item[idKey]);
    if (i >= 0) list[i] = item; else list.push(item);
  }

  function actionButton(text, label, key, action, path, body, topic, done) {
    const b = el("button", "button" + (action === "read" || action === "opt-in" ? " button-quiet" : ""), text);
    b.type = "button"; b.dataset.key = key; b.dataset.action = action;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", async () => {
      const status = $(topic + "-status");
      b.disabled = true; status.textContent = t("Sending…");
      try {
        const item = await post(path, body);
        focusKey = key;
        if (topic === "events") { upsert(state.events, item, "issuer_event_id"); renderEvents(); }
        else { upsert(state.messages, item, "message_id"); renderMessages(); }
        status.textContent = done;
      } catch (e) {
        b.disabled = false; status.textContent = t("Not done: {reason}", { reason: e.message });
      }
    });
    return b;
  }

  function restoreFocus(list) {
    // Redrawing replaces the buttons; keep the keyboard where it was (WCAG 2.4.3).
    if (!focusKey) return;
    const key = focusKey; focusKey = null;
    const target = [...list.querySelectorAll("button")].find((b) => b.dataset.key === key);
    if (target) target.focus();
    else { const heading = list.previousElementSibling; if (heading) { heading.tabIndex = -1; heading.focus(); } }
  }

  function keepFocus(list) {
    const active = document.activeElement;
    if (active && list.contains(active) && active.dataset.key) focusKey = active.dataset.key;
  }

  function renderMessages() {
    const list = $("messages"); keepFocus(list); list.replaceChildren();
    if (!state.messages.length) { list.append(el("li", "empty", t("No message."))); return; }
    for (const m of state.messages) {
      const li = el("li");
      const text = m.display_text || m.text;
      li.dataset.messageId = m.message_id;
      li.append(el("span", "tag tag-" + m.importance, label(IMPORTANCE, m.importance)));
      if (!m.read) li.append(el("span", "tag tag-unread", t("unread")));
      li.append(el("span", "", text));
      const bits = [when(m.received_at)];
      if (m.cancelled_at) bits.push(t("withdrawn"));
      else if (!m.active) bits.push(t("expired"));
      if (m.confirmation_required) bits.push(m.confirmed_at ? t("confirmed") : t("confirmation requested"));
      li.append(el("span", "meta", bits.join(" · ")));
      const key = `message:${m.meter_id}:${m.message_id}`;
      const base = `/api/v1/messages/${encodeURIComponent(m.meter_id)}/${m.message_id}/`;
      const row = el("div", "actions");
      if (m.confirmation_required && !m.confirmed_at && !m.cancelled_at) {
        const done = t("Confirmed; the utility is told.");
        if (m.enhanced_confirmation) {
          row.append(actionButton(t("Yes"), t("Answer yes to: {text}", { text }), key, "confirm-yes", base + "confirm", { answer: "yes" }, "messages", done),
            actionButton(t("No"), t("Answer no to: {text}", { text }), key, "confirm-no", base + "confirm", { answer: "no" }, "messages", done));
        } else {
          row.append(actionButton(t("Confirm"), t("Confirm: {text}", { text }), key, "confirm", base + "confirm", null, "messages", done));
        }
      } else if (!m.read) {
        row.append(actionButton(t("Mark read"), t("Mark read: {text}", { text }), key, "read", base + "read", null, "messages", t("Marked read.")));
      }
      if (row.childElementCount) li.append(row);
      list.append(li);
    }
    restoreFocus(list);
  }

  function renderHealth() {
    const h = state.health; if (!h) return;
    const STATES = { ok: t("ok"), degraded: t("degraded"), starting: t("starting") };
    $("health").textContent = t("Appliance {status} · frames {received} received, {malformed} malformed, {rejected} rejected", {
      status: label(STATES, h.status), received: fmt(h.frames.received, 0), malformed: fmt(h.frames.malformed, 0), rejected: fmt(h.frames.rejected, 0) });
  }

  let costTimer = null;
  let lastIntervalStart = null;
  const money = (v, cur) => {
    if (v === null || v === undefined) return "–";
    try { return new Intl.NumberFormat(LOCALE, { style: "currency", currency: cur || "USD" }).format(v); }
    catch (e) { return Number(v).toFixed(2) + " " + (cur || ""); }
  };
  const kwh = (v) => (v === null || v === undefined ? "–" : fmt(v, 2) + " kWh");
  const day = (isoDate) => new Date(isoDate + "T12:00:00").toLocaleDateString(LOCALE, { dateStyle: "medium" });
  const count = (n) => Number(n).toLocaleString(LOCALE);

  async function fetchJson(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!r.ok) throw new Error(path + " " + r.status);
    return r.json();
  }

  async function refreshCost() {
    try {
      const [interval, today, cycle] = await Promise.all(
        ["interval", "today", "cycle"].map((p) => fetchJson("/api/v1/cost?period=" + p)));
      const cur = (cycle.cost && cycle.cost.currency) || "USD";
      const show = (id, report) => {
        const c = report.cost;
        $(id).textContent = c ? money(c.total_cost, cur) : "–";
        $(id + "-kwh").textContent = !c ? t("no intervals read")
          : c.generated_kwh ? t("{used} used · {generated} generated", { used: kwh(c.energy_kwh), generated: kwh(c.generated_kwh) })
            : t("{used} used", { used: kwh(c.energy_kwh) });
      };
      show("cost-interval", interval); show("cost-today", today); show("cost-cycle", cycle);
      const p = cycle.projection;
      $("cost-projection").textContent = p ? money(p.total_cost, cur) : "–";
      $("cost-next-tier").textContent = cycle.next_tier_date
        ? t("Tier {tier} from {date}", { tier: cycle.next_tier, date: day(cycle.next_tier_date) })
        : (p ? t("cycle ends {date}", { date: day(p.cycle_end) }) : "\u00a0");
      const c = cycle.cost;
      const tiers = ((c && c.tiers) || []).map((x) => ({
        label: x.allowance_kwh ? t("Tier {tier} (up to {kwh} kWh)", { tier: x.tier, kwh: fmt(x.allowance_kwh, 0) }) : t("Tier {tier}", { tier: x.tier }),
        short: t("Tier {tier}", { tier: x.tier }), kwh: x.energy_kwh, cost: x.cost }));
      const seasons = new Set(((c && c.periods) || []).map((x) => x.season));
      const periods = ((c && c.periods) || []).map((x) => {
        const name = label(PERIODS, x.period);
        const text = seasons.size > 1 ? `${name} (${label(PERIODS, x.season)})` : name;
        return { label: text, short: text, kwh: x.energy_kwh, cost: x.cost };
      });
      fillTable($("cost-tiers"), tiers, cur);
      fillTable($("cost-periods"), periods, cur);
      costBars.tier = { items: tiers, cur }; costBars.period = { items: periods, cur };
      drawCostBars();
      const notes = [];
      if (c && c.generation_credit) notes.push(t("generation credit {amount}", { amount: money(c.generation_credit, cur) }));
      if (c && c.fixed_charges) notes.push(t("fixed charges {amount}", { amount: money(c.fixed_charges, cur) }));
      if (c && c.missing_intervals) notes.push(t("{count} intervals not read (shown as gaps, never estimated)", { count: count(c.missing_intervals) }));
      $("cost-notes").textContent = notes.length ? notes.join(" · ") : "\u00a0";
    } catch (e) {
      $("cost-notes").textContent = t("Cost not available: {reason}", { reason: e.message });
    }
  }

  // -- cost per tier and per time-of-use period: horizontal bars drawn as SVG ------------------
  // One row per item: its name on a line, then a bar as long as its cost and the figures. Sized
  // in pixels to the box (redrawn when it resizes), so the text stays readable on a phone.
  const costBars = { tier: null, period: null };
  const SVG = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs, text) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };

  function fillTable(body, items, cur) {
    body.replaceChildren();
    if (!items.length) {
      const tr = el("tr"); const td = el("td", "empty", t("No intervals read yet.")); td.colSpan = 3; tr.append(td); body.append(tr); return;
    }
    for (const x of items) {
      const tr = el("tr");
      tr.append(el("td", "", x.label), el("td", "", fmt(x.kwh, 2)), el("td", "", money(x.cost, cur)));
      body.append(tr);
    }
  }

  function drawBars(box, summary, data) {
    box.replaceChildren();
    const items = (data && data.items) || [];
    if (!items.length) {
      box.append(el("p", "empty", t("No intervals read yet.")));
      summary.textContent = t("No intervals read yet."); return;
    }
    const width = Math.max(box.clientWidth, 240);
    const rowH = 46; const barH = 16; const top = 4;
    const most = Math.max(...items.map((x) => Math.abs(x.cost)), 1e-9);
    const svg = svgEl("svg", { width, height: top + rowH * items.length, viewBox: `0 0 ${width} ${top + rowH * items.length}`,
      "aria-hidden": "true", focusable: "false", class: "bars-svg" });
    const figures = [];
    items.forEach((x, i) => {
      const y = top + i * rowH;
      const value = `${money(x.cost, data.cur)} · ${fmt(x.kwh, 1)} kWh`;
      figures.push(`${x.label}: ${value}`);
      svg.append(svgEl("text", { x: 0, y: y + 14, class: "bars-label" }, x.short));
      const room = Math.max(width - 150, 60);
      const w = Math.max(2, Math.round(room * Math.abs(x.cost) / most));
      svg.append(svgEl("rect", { x: 0, y: y + 20, width: w, height: barH, rx: 3, class: "bars-bar bars-bar-" + (i % 6) }));
      svg.append(svgEl("text", { x: w + 6, y: y + 33, class: "bars-value" }, value));
    });
    box.append(svg);
    summary.textContent = figures.join("; ") + ".";
  }

  function drawCostBars() {
    drawBars($("tier-chart"), $("tier-chart-summary"), costBars.tier);
    drawBars($("period-chart"), $("period-chart-summary"), costBars.period);
  }
  if (window.ResizeObserver) {
    let barsWidth = 0;
    new ResizeObserver(() => {
      const w = $("tier-chart").clientWidth;
      if (w === barsWidth || !costBars.tier) return;
      barsWidth = w; drawCostBars();
    }).observe($("tier-chart"));
  }

  async function refreshRate() {
    try {
      const r = await fetchJson("/api/v1/tariff");
      if (!r.plan) { $("rate-summary").textContent = t("No rate plan configured; prices come from the meter."); return; }
      const cycle = r.billing_cycle;
      const tiers = r.tiers.map((x) => (x.allowance_kwh
        ? t("tier {tier} {price}/kWh up to {kwh} kWh", { tier: x.tier, price: money(x.price_per_kwh, r.currency), kwh: fmt(x.allowance_kwh, 0) })
        : t("tier {tier} {price}/kWh", { tier: x.tier, price: money(x.price_per_kwh, r.currency) }))).join(", ");
      $("rate-summary").textContent = t("{plan} ({kinds}) from {utility} · billing cycle {start} to {end}", {
        plan: r.label, kinds: r.kinds.map((k) => label(KINDS, k)).join(" + "), utility: r.utility_name || t("your utility"), start: day(cycle.start), end: day(cycle.end) })
        + (tiers ? ` · ${tiers}` : "");
      const list = $("rate-periods"); list.replaceChildren();
      const seasons = Object.entries(r.periods || {});
      for (const [season, days] of seasons) {
        for (const [dayType, periods] of Object.entries(days)) {
          const where = (seasons.length > 1 ? label(PERIODS, season) + " · " : "") + label(PERIODS, dayType);
          const text = periods.map((p) => `${label(PERIODS, p.period)} ${p.start}–${p.end} ${money(p.price_per_kwh, r.currency)}`).join(" · ");
          list.append(el("li", "", `${where}: ${text}`));
        }
      }
    } catch (e) { $("rate-summary").textContent = t("Rate not available: {reason}", { reason: e.message }); }
  }

  async function compare() {
    const button = $("whatif-button"); const out = $("whatif");
    button.disabled = true; out.textContent = t("Comparing…");
    try {
      const w = await fetchJson("/api/v1/cost/whatif");
      out.replaceChildren();
      const list = el("ul", "list compact");
      for (const b of w.bills) list.append(el("li", "", `${b.plan}: ${money(b.total_cost, b.currency)}`));
      const days = Math.round(w.intervals_read ? (Date.parse(w.end) - Date.parse(w.start)) / 864e5 : 0);
      const note = !w.cheapest ? t("Not enough history to compare.")
        : w.savings_vs_active ? t("Cheapest: {plan}, {amount} less than your plan ({active})", {
          plan: w.cheapest, amount: money(w.savings_vs_active, w.bills[0].currency), active: w.active_plan })
          : t("Cheapest: {plan} (your plan)", { plan: w.cheapest });
      out.append(el("p", "", note), list,
        el("p", "sub", t("Based on {read} intervals read between {start} and {end}; {missing} missing (import Green Button history with \"ems import\" for a full year).", {
          read: count(w.intervals_read), start: day(w.start.slice(0, 10)), end: day(w.end.slice(0, 10)), missing: count(w.missing_intervals) })));
    } catch (e) { out.textContent = t("Comparison not available: {reason}", { reason: e.message }); }
    button.disabled = false;
  }
  $("whatif-button").addEventListener("click", compare);

  // -- usage chart: energy per bucket (generation below zero) with the price on a second axis ----
  const usage = { range: "day", chart: null, data: null, seq: 0 };
  // uPlot's axis and legend dates in the page's language (its own names are English).
  const DATE_NAMES = (() => {
    const names = (options, count, at) => Array.from({ length: count }, (_, i) => {
      try { return new Intl.DateTimeFormat(LOCALE, { ...options, timeZone: "UTC" }).format(at(i)); } catch (e) { return ""; }
    });
    const month = (i) => new Date(Date.UTC(2024, i, 15));
    const weekday = (i) => new Date(Date.UTC(2024, 8, 1 + i));  // 1 Sep 2024 was a Sunday
    return { MMMM: names({ month: "long" }, 12, month), MMM: names({ month: "short" }, 12, month),
      WWWW: names({ weekday: "long" }, 7, weekday), WWW: names({ weekday: "short" }, 7, weekday) };
  })();
  const chartBox = $("usage-chart");

  function chartSize() {
    const width = Math.max(chartBox.clientWidth, 200);
    return { width, height: Math.round(Math.min(Math.max(width * 0.5, 200), 320)) };
  }

  // The time axis in the page's language and the site's time zone (uPlot's own ticks say "2pm").
  const tickFormat = (options) => { try { return new Intl.DateTimeFormat(LOCALE, { timeZone: tz, ...options }); }
    catch (e) { return new Intl.DateTimeFormat(LOCALE, options); } };
  const TICKS = { time: tickFormat({ hour: "numeric", minute: "2-digit" }), day: tickFormat({ day: "numeric", month: "short" }),
    month: tickFormat({ month: "short", year: "numeric" }) };
  function timeTicks(self, splits, axisIdx, space, incr) {
    const format = incr < 86400 ? TICKS.time : incr < 86400 * 28 ? TICKS.day : TICKS.month;
    return splits.map((ts) => format.format(new Date(ts * 1e3)));
  }

  function drawUsage(u) {
    const gen = u.generated_kwh.map((v) => (v === null ? null : -v));  // shown below zero
    const data = [u.t, u.price_per_kwh, u.consumed_kwh, gen];
    const cur = u.currency || "";
    if (usage.chart) { usage.chart.destroy(); usage.chart = null; }
    if (typeof uPlot === "undefined") { $("usage-status").textContent = t("Chart library not loaded."); return; }
    const bars = uPlot.paths.bars({ size: [0.8, 60] });
    const opts = {
      ...chartSize(),
      fmtDate: (tpl) => uPlot.fmtDate(tpl, DATE_NAMES),
      tzDate: (ts) => { try { return uPlot.tzDate(new Date(ts * 1e3), tz); } catch (e) { return new Date(ts * 1e3); } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { kwh: { auto: true }, price: { auto: true } },
      series: [
        { label: t("Time"), value: (self, ts) => (ts === null ? "–" : when(new Date(ts * 1e3).toISOString())) },
        { label: t("Price ({currency}/kWh)", { currency: cur || "–" }), scale: "price", stroke: "rgba(161, 92, 0, .8)", width: 1.5,
          spanGaps: false, points: { show: false }, value: (self, v) => (v === null ? "–" : fmt(v, 3)) },
        { label: t("Used kWh"), scale: "kwh", fill: "rgba(11, 92, 173, .75)", stroke: "#0b5cad", width: 0, paths: bars,
          points: { show: false }, value: (self, v) => (v === null ? "–" : fmt(v, 3)) },
        { label: t("Generated kWh"), scale: "kwh", fill: "rgba(27, 127, 59, .75)", stroke: "#1b7f3b", width: 0, paths: bars,
          points: { show: false }, value: (self, v) => (v === null ? "–" : fmt(-v, 3)) },
      ],
      axes: [
        { stroke: "#5d6875", grid: { stroke: "#eef0f3" }, values: timeTicks },
        { scale: "kwh", stroke: "#5d6875", grid: { stroke: "#eef0f3" }, size: 48, values: (self, ticks) => ticks.map((v) => Number(+v.toFixed(2)).toLocaleString(LOCALE)) },
        { scale: "price", side: 1, stroke: "#a15c00", grid: { show: false }, size: 48,
          values: (self, ticks) => ticks.map((v) => fmt(v, 2)) },
      ],
    };
    usage.chart = new uPlot(opts, data, chartBox);
  }

  async function refreshUsage() {
    const seq = ++usage.seq;
    const range = usage.range;
    try {
      const u = await fetchJson("/api/v1/usage?range=" + range);
      if (seq !== usage.seq) return;  // a newer range was asked for meanwhile
      usage.data = u; drawUsage(u);
      const bits = [t("{count} intervals read", { count: count(u.intervals_read) })];
      if (u.empty_buckets) bits.push(t("{empty} of {all} periods not read (gaps, never estimated)", { empty: count(u.empty_buckets), all: count(u.t.length) }));
      if (!u.plan) bits.push(t("no rate plan, so no price"));
      $("usage-status").textContent = bits.join(" · ");
    } catch (e) {
      if (seq === usage.seq) $("usage-status").textContent = t("Usage not available: {reason}", { reason: e.message });
    }
  }

  for (const b of document.querySelectorAll(".range[data-range]")) {
    b.addEventListener("click", () => {
      usage.range = b.dataset.range;
      for (const o of document.querySelectorAll(".range[data-range]")) o.setAttribute("aria-pressed", String(o === b));
      refreshUsage();
    });
  }
  if (window.ResizeObserver) {
    let lastWidth = 0;
    new ResizeObserver(() => {
      if (!usage.chart || chartBox.clientWidth === lastWidth) return;
      lastWidth = chartBox.clientWidth; usage.chart.setSize(chartSize());
    }).observe(chartBox);
  }

  function scheduleCost() { clearTimeout(costTimer); costTimer = setTimeout(() => { refreshCost(); refreshUsage(); }, 300); }

  function upsertMeter(m) {
    const i = state.meters.findIndex((x) => x.meter_id === m.meter_id);
    if (i >= 0) state.meters[i] = m; else state.meters.push(m);
  }

  function onMessage(msg) {
    if (msg.topic === "snapshot") {
      Object.assign(state, msg.data);
      renderMeter(); renderPrice(); renderEvents(); renderMessages(); renderHealth();
      scheduleCost(); refreshRate();
    } else if (msg.topic === "meter") {
      upsertMeter(msg.data); renderMeter();
      const start = msg.data.last_interval && msg.data.last_interval.start;
      if (start && start !== lastIntervalStart) { lastIntervalStart = start; scheduleCost(); }
    }
    else if (msg.topic === "prices") { state.prices = msg.data; renderPrice(); }
    else if (msg.topic === "messages") { state.messages = msg.data; renderMessages(); }
    else if (msg.topic === "events") { state.events = msg.data; renderEvents(); }
    document.dispatchEvent(new CustomEvent("ems:update", { detail: msg }));
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws?lang=${encodeURIComponent(LOCALE || "")}`);
    socket = ws;
    ws.onopen = () => { retryMs = 500; };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = () => {
      const link = $("link"); link.textContent = t("Appliance unreachable – reconnecting"); link.className = "pill pill-bad";
      document.body.classList.add("stale");
      setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 10000);
    };
  }
  // Once a minute, ask for a fresh snapshot so "active"/"expired" marks follow the clock.
  setInterval(() => { if (socket && socket.readyState === WebSocket.OPEN) socket.send("snapshot"); }, 60000);
  connect();
})();
