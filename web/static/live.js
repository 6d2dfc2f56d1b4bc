// Live page: one WebSocket, a snapshot on connect, then a message per change.
// Reconnects by itself with backoff and greys out the figures while the data is stale.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const tz = document.body.dataset.timezone || undefined;
  const state = { meters: [], prices: [], messages: [], events: [], health: null };
  let retryMs = 500;
  let socket = null;

  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined,
    { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const when = (iso, timeStyle = "short") => {
    if (!iso) return "–";
    try { return new Date(iso).toLocaleString(undefined, { timeZone: tz, dateStyle: "medium", timeStyle }); }
    catch (e) { return new Date(iso).toLocaleString(); }
  };
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls; if (text !== undefined) n.textContent = text; return n; };

  function renderMeter() {
    const m = state.meters[0];
    if (!m) return;
    $("demand").textContent = fmt(m.demand_kw, 3);
    $("demand-direction").textContent = m.demand_kw === null ? "\u00a0" :
      (m.demand_kw < 0 ? "Sending power to the grid" : "Drawing power from the grid");
    $("delivered").textContent = fmt(m.summation_delivered_kwh, 3);
    $("received").textContent = fmt(m.summation_received_kwh, 3);
    const updated = $("updated");
    updated.textContent = m.last_reading_at ? when(m.last_reading_at, "medium") : "never";
    if (m.last_reading_at) updated.setAttribute("datetime", m.last_reading_at);
    const link = $("link");
    const labels = { online: ["Meter online", "pill-ok"], stale: ["Data stale", "pill-bad"],
      offline: ["Meter offline – retrying", "pill-bad"], connecting: ["Connecting to meter…", "pill-wait"] };
    const [text, cls] = labels[m.link] || [m.link, "pill-wait"];
    link.textContent = text; link.className = "pill " + cls;
    document.body.classList.toggle("stale", m.link !== "online");
  }

  function renderPrice() {
    const p = state.prices[0] && state.prices[0].current;
    document.body.className = document.body.className.replace(/\btier-\d+\b/g, "").trim();
    if (!p) { $("price").textContent = "–"; $("price-detail").textContent = "No price published"; return; }
    let money;
    try { money = new Intl.NumberFormat(undefined, { style: "currency", currency: p.currency, maximumFractionDigits: 4 }).format(p.price_per_kwh); }
    catch (e) { money = p.price_per_kwh + " " + p.currency; }
    $("price").textContent = money + " /kWh";
    const tier = p.tier ? `Tier ${p.tier}${p.number_of_tiers ? " of " + p.number_of_tiers : ""}` : "No tier";
    $("price-detail").textContent = `${p.rate_label || "Rate"} · ${tier}`;
    if (p.tier) document.body.classList.add("tier-" + p.tier);
  }

  function renderEvents() {
    const list = $("events"); keepFocus(list); list.replaceChildren();
    const shown = state.events.filter((e) => e.status !== "completed" && e.status !== "cancelled")
      .concat(state.events.filter((e) => e.status === "completed" || e.status === "cancelled").slice(-3));
    if (!shown.length) { list.append(el("li", "empty", "No event announced.")); return; }
    for (const e of shown) {
      const li = el("li");
      li.append(el("span", "tag tag-" + e.status, e.status), el("strong", "", `Event ${e.issuer_event_id}`));
      const asks = [];
      if (e.cooling_offset_c !== null) asks.push(`cooling +${e.cooling_offset_c} °C`);
      if (e.heating_offset_c !== null) asks.push(`heating −${e.heating_offset_c} °C`);
      if (e.cooling_setpoint_c !== null) asks.push(`cool to ${e.cooling_setpoint_c} °C`);
      if (e.heating_setpoint_c !== null) asks.push(`heat to ${e.heating_setpoint_c} °C`);
      if (e.average_load_adjustment_pct !== null) asks.push(`load ${e.average_load_adjustment_pct > 0 ? "+" : ""}${e.average_load_adjustment_pct} %`);
      if (e.duty_cycle_pct !== null) asks.push(`duty cycle ${e.duty_cycle_pct} %`);
      li.append(el("span", "meta", `${when(e.start)} – ${when(e.end)} · ${e.duration_min} min · ${e.criticality.replace("_", " ")}`));
      li.append(el("span", "meta", `${e.device_classes.join(", ").replace(/_/g, " ")}${asks.length ? " · " + asks.join(", ") : ""}`));
      if (e.status === "active" || e.status === "scheduled") {
        const key = `event:${e.meter_id}:${e.issuer_event_id}`;
        const base = `/api/v1/events/${encodeURIComponent(e.meter_id)}/${e.issuer_event_id}/`;
        const row = el("div", "actions");
        if (e.participation === "opted_out") {
          li.children[1].after(el("span", "tag tag-opted_out", "opted out"));
          row.append(actionButton("Opt back in", `Take part in event ${e.issuer_event_id} again`, key, "opt-in",
            base + "opt-in", null, "events", `You take part in event ${e.issuer_event_id} again.`));
        } else {
          row.append(actionButton("Opt out", `Opt out of event ${e.issuer_event_id}`, key, "opt-out",
            base + "opt-out", null, "events", `You opted out of event ${e.issuer_event_id}; the utility is told.`));
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
      b.disabled = true; status.textContent = "Sending…";
      try {
        const item = await post(path, body);
        focusKey = key;
        if (topic === "events") { upsert(state.events, item, "issuer_event_id"); renderEvents(); }
        else { upsert(state.messages, item, "message_id"); renderMessages(); }
        status.textContent = done;
      } catch (e) {
        b.disabled = false; status.textContent = "Not done: " + e.message;
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
    if (!state.messages.length) { list.append(el("li", "empty", "No message.")); return; }
    for (const m of state.messages) {
      const li = el("li");
      li.dataset.messageId = m.message_id;
      li.append(el("span", "tag tag-" + m.importance, m.importance));
      if (!m.read) li.append(el("span", "tag tag-unread", "unread"));
      li.append(el("span", "", m.text));
      const bits = [when(m.received_at)];
      if (m.cancelled_at) bits.push("withdrawn");
      else if (!m.active) bits.push("expired");
      if (m.confirmation_required) bits.push(m.confirmed_at ? "confirmed" : "confirmation requested");
      li.append(el("span", "meta", bits.join(" · ")));
      const key = `message:${m.meter_id}:${m.message_id}`;
      const base = `/api/v1/messages/${encodeURIComponent(m.meter_id)}/${m.message_id}/`;
      const row = el("div", "actions");
      if (m.confirmation_required && !m.confirmed_at && !m.cancelled_at) {
        const done = "Confirmed; the utility is told.";
        if (m.enhanced_confirmation) {
          row.append(actionButton("Yes", `Answer yes to: ${m.text}`, key, "confirm-yes", base + "confirm", { answer: "yes" }, "messages", done),
            actionButton("No", `Answer no to: ${m.text}`, key, "confirm-no", base + "confirm", { answer: "no" }, "messages", done));
        } else {
          row.append(actionButton("Confirm", `Confirm: ${m.text}`, key, "confirm", base + "confirm", null, "messages", done));
        }
      } else if (!m.read) {
        row.append(actionButton("Mark read", `Mark read: ${m.text}`, key, "read", base + "read", null, "messages", "Marked read."));
      }
      if (row.childElementCount) li.append(row);
      list.append(li);
    }
    restoreFocus(list);
  }

  function renderHealth() {
    const h = state.health; if (!h) return;
    $("health").textContent = `Appliance ${h.status} · frames ${h.frames.received} received, ${h.frames.malformed} malformed, ${h.frames.rejected} rejected`;
  }

  let costTimer = null;
  let lastIntervalStart = null;
  const money = (v, cur) => {
    if (v === null || v === undefined) return "–";
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: cur || "USD" }).format(v); }
    catch (e) { return Number(v).toFixed(2) + " " + (cur || ""); }
  };
  const kwh = (v) => (v === null || v === undefined ? "–" : fmt(v, 2) + " kWh");

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
        $(id + "-kwh").textContent = c ? `${kwh(c.energy_kwh)} used` + (c.generated_kwh ? ` · ${kwh(c.generated_kwh)} generated` : "") : "no intervals read";
      };
      show("cost-interval", interval); show("cost-today", today); show("cost-cycle", cycle);
      const p = cycle.projection;
      $("cost-projection").textContent = p ? money(p.total_cost, cur) : "–";
      $("cost-next-tier").textContent = cycle.next_tier_date
        ? `Tier ${cycle.next_tier} from ${new Date(cycle.next_tier_date + "T12:00:00").toLocaleDateString(undefined, { dateStyle: "medium" })}`
        : (p ? `cycle ends ${new Date(p.cycle_end + "T12:00:00").toLocaleDateString(undefined, { dateStyle: "medium" })}` : "\u00a0");
      const body = $("cost-tiers"); body.replaceChildren();
      const tiers = (cycle.cost && cycle.cost.tiers) || [];
      if (!tiers.length) { const tr = el("tr"); const td = el("td", "empty", "No intervals read yet."); td.colSpan = 3; tr.append(td); body.append(tr); }
      for (const t of tiers) {
        const tr = el("tr");
        tr.append(el("td", "", `Tier ${t.tier}` + (t.allowance_kwh ? ` (up to ${fmt(t.allowance_kwh, 0)} kWh)` : "")), el("td", "", fmt(t.energy_kwh, 2)), el("td", "", money(t.cost, cur)));
        body.append(tr);
      }
      const c = cycle.cost;
      const notes = [];
      if (c && c.generation_credit) notes.push(`generation credit ${money(c.generation_credit, cur)}`);
      if (c && c.fixed_charges) notes.push(`fixed charges ${money(c.fixed_charges, cur)}`);
      if (c && c.missing_intervals) notes.push(`${c.missing_intervals} intervals not read (shown as gaps, never estimated)`);
      $("cost-notes").textContent = notes.length ? notes.join(" · ") : "\u00a0";
    } catch (e) {
      $("cost-notes").textContent = "Cost not available: " + e.message;
    }
  }
  async function refreshRate() {
    try {
      const t = await fetchJson("/api/v1/tariff");
      if (!t.plan) { $("rate-summary").textContent = "No rate plan configured; prices come from the meter."; return; }
      const cycle = t.billing_cycle;
      const tiers = t.tiers.map((x) => `tier ${x.tier} ${money(x.price_per_kwh, t.currency)}/kWh` + (x.allowance_kwh ? ` up to ${fmt(x.allowance_kwh, 0)} kWh` : "")).join(", ");
      $("rate-summary").textContent = `${t.label} (${t.kinds.join(" + ")}) from ${t.utility_name || "your utility"} · billing cycle ${cycle.start} to ${cycle.end}` + (tiers ? ` · ${tiers}` : "");
      const list = $("rate-periods"); list.replaceChildren();
      const seasons = Object.entries(t.periods || {});
      for (const [season, days] of seasons) {
        for (const [day, periods] of Object.entries(days)) {
          const where = (seasons.length > 1 ? season + " " : "") + day;
          const text = periods.map((p) => `${p.period} ${p.start}–${p.end} ${money(p.price_per_kwh, t.currency)}`).join(" · ");
          list.append(el("li", "", `${where}: ${text}`));
        }
      }
    } catch (e) { $("rate-summary").textContent = "Rate not available: " + e.message; }
  }

  async function compare() {
    const button = $("whatif-button"); const out = $("whatif");
    button.disabled = true; out.textContent = "Comparing…";
    try {
      const w = await fetchJson("/api/v1/cost/whatif");
      out.replaceChildren();
      const list = el("ul", "list compact");
      for (const b of w.bills) list.append(el("li", "", `${b.plan}: ${money(b.total_cost, b.currency)}`));
      const days = Math.round(w.intervals_read ? (Date.parse(w.end) - Date.parse(w.start)) / 864e5 : 0);
      const note = w.cheapest
        ? `Cheapest: ${w.cheapest}` + (w.savings_vs_active ? `, ${money(w.savings_vs_active, w.bills[0].currency)} less than your plan (${w.active_plan})` : " (your plan)")
        : "Not enough history to compare.";
      out.append(el("p", "", note), list,
        el("p", "sub", `Based on ${w.intervals_read.toLocaleString()} intervals read between ${w.start.slice(0, 10)} and ${w.end.slice(0, 10)}; ${w.missing_intervals.toLocaleString()} missing (import Green Button history with "ems import" for a full year).`));
    } catch (e) { out.textContent = "Comparison not available: " + e.message; }
    button.disabled = false;
  }
  $("whatif-button").addEventListener("click", compare);

  // -- usage chart: energy per bucket (generation below zero) with the price on a second axis ----
  const usage = { range: "day", chart: null, data: null, seq: 0 };
  const chartBox = $("usage-chart");

  function chartSize() {
    const width = Math.max(chartBox.clientWidth, 200);
    return { width, height: Math.round(Math.min(Math.max(width * 0.5, 200), 320)) };
  }

  function drawUsage(u) {
    const gen = u.generated_kwh.map((v) => (v === null ? null : -v));  // shown below zero
    const data = [u.t, u.price_per_kwh, u.consumed_kwh, gen];
    const cur = u.currency || "";
    if (usage.chart) { usage.chart.destroy(); usage.chart = null; }
    if (typeof uPlot === "undefined") { $("usage-status").textContent = "Chart library not loaded."; return; }
    const bars = uPlot.paths.bars({ size: [0.8, 60] });
    const opts = {
      ...chartSize(),
      tzDate: (ts) => { try { return uPlot.tzDate(new Date(ts * 1e3), tz); } catch (e) { return new Date(ts * 1e3); } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { kwh: { auto: true }, price: { auto: true } },
      series: [
        {},
        { label: `Price (${cur || "–"}/kWh)`, scale: "price", stroke: "rgba(161, 92, 0, .8)", width: 1.5,
          spanGaps: false, points: { show: false }, value: (self, v) => (v === null ? "–" : v.toFixed(3)) },
        { label: "Used kWh", scale: "kwh", fill: "rgba(11, 92, 173, .75)", stroke: "#0b5cad", width: 0, paths: bars,
          points: { show: false }, value: (self, v) => (v === null ? "–" : v.toFixed(3)) },
        { label: "Generated kWh", scale: "kwh", fill: "rgba(27, 127, 59, .75)", stroke: "#1b7f3b", width: 0, paths: bars,
          points: { show: false }, value: (self, v) => (v === null ? "–" : (-v).toFixed(3)) },
      ],
      axes: [
        { stroke: "#5d6875", grid: { stroke: "#eef0f3" } },
        { scale: "kwh", stroke: "#5d6875", grid: { stroke: "#eef0f3" }, size: 48, values: (self, ticks) => ticks.map((v) => +v.toFixed(2)) },
        { scale: "price", side: 1, stroke: "#a15c00", grid: { show: false }, size: 48,
          values: (self, ticks) => ticks.map((v) => v.toFixed(2)) },
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
      const gaps = u.empty_buckets ? ` · ${u.empty_buckets} of ${u.t.length} periods not read (gaps, never estimated)` : "";
      $("usage-status").textContent = `${u.intervals_read.toLocaleString()} intervals read` + gaps +
        (u.plan ? "" : " · no rate plan, so no price");
    } catch (e) {
      if (seq === usage.seq) $("usage-status").textContent = "Usage not available: " + e.message;
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
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    socket = ws;
    ws.onopen = () => { retryMs = 500; };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = () => {
      const link = $("link"); link.textContent = "Appliance unreachable – reconnecting"; link.className = "pill pill-bad";
      document.body.classList.add("stale");
      setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 10000);
    };
  }
  // Once a minute, ask for a fresh snapshot so "active"/"expired" marks follow the clock.
  setInterval(() => { if (socket && socket.readyState === WebSocket.OPEN) socket.send("snapshot"); }, 60000);
  connect();
})();
