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
    const list = $("events"); list.replaceChildren();
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
      list.append(li);
    }
  }

  function renderMessages() {
    const list = $("messages"); list.replaceChildren();
    if (!state.messages.length) { list.append(el("li", "empty", "No message.")); return; }
    for (const m of state.messages) {
      const li = el("li");
      li.append(el("span", "tag tag-" + m.importance, m.importance));
      li.append(el("span", "", m.text));
      const bits = [when(m.received_at)];
      if (m.cancelled_at) bits.push("withdrawn");
      else if (!m.active) bits.push("expired");
      if (m.confirmation_required) bits.push(m.confirmed_at ? "confirmed" : "confirmation requested");
      li.append(el("span", "meta", bits.join(" · ")));
      list.append(li);
    }
  }

  function renderHealth() {
    const h = state.health; if (!h) return;
    $("health").textContent = `Appliance ${h.status} · frames ${h.frames.received} received, ${h.frames.malformed} malformed, ${h.frames.rejected} rejected`;
  }

  function upsertMeter(m) {
    const i = state.meters.findIndex((x) => x.meter_id === m.meter_id);
    if (i >= 0) state.meters[i] = m; else state.meters.push(m);
  }

  function onMessage(msg) {
    if (msg.topic === "snapshot") {
      Object.assign(state, msg.data);
      renderMeter(); renderPrice(); renderEvents(); renderMessages(); renderHealth();
    } else if (msg.topic === "meter") { upsertMeter(msg.data); renderMeter(); }
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
