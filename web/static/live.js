// Live page: one WebSocket, a snapshot on connect, then a message per change.
// Reconnects by itself with backoff and greys out the figures while the data is stale.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // What the customer switched off of the utility's program (Settings): left out of the page.
  const HIDE = new Set((document.body.dataset.hide || "").split(" ").filter(Boolean));
  const tz = document.body.dataset.timezone || undefined;
  // The page's language: its strings come in a JSON block the server renders (web/i18n.py).
  const I18N = (() => { try { return JSON.parse($("i18n").textContent); } catch (e) { return {}; } })();
  // Temperatures come in °C; the reader may read °F (Settings): the number and the unit change
  // together. A change of temperature (an offset) converts without the 32.
  const FAHRENHEIT = I18N.temperature_unit === "F";
  const inUnit = (text) => (FAHRENHEIT ? text.replace(/°C/g, "°F") : text);
  const LOCALE = I18N.locale || document.documentElement.lang || undefined;
  const t = (msgid, values) => {
    const text = (I18N.strings && I18N.strings[msgid]) || msgid;
    return values ? text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)) : text;
  };
  // Machine values the API sends, as the reader reads them.
  const STATUS = { scheduled: t("scheduled"), active: t("active"), completed: t("completed"), cancelled: t("cancelled"),
    superseded: t("superseded") };
  const IMPORTANCE = { low: t("low"), medium: t("medium"), high: t("high"), critical: t("critical") };
  const CRITICALITY = { green: t("green"), level_1: t("urgency 1 of 5"), level_2: t("urgency 2 of 5"), level_3: t("urgency 3 of 5"),
    level_4: t("urgency 4 of 5"), level_5: t("urgency 5 of 5"), emergency: t("emergency"), planned_outage: t("planned outage"),
    service_disconnect: t("service disconnect") };
  const DEVICES = { hvac: t("heating and cooling"), strip_heater: t("strip heater"), water_heater: t("water heater"),
    pool_pump: t("pool pump"), smart_appliance: t("smart appliances"), irrigation_pump: t("irrigation pump"),
    commercial_load: t("commercial loads"), simple_load: t("simple loads"), exterior_lighting: t("exterior lighting"),
    interior_lighting: t("interior lighting"), electric_vehicle: t("electric vehicle"), generation: t("generation") };
  const PERIODS = { "off-peak": t("off-peak"), "on-peak": t("on-peak"), "mid-peak": t("mid-peak"),
    "super-off-peak": t("super off-peak"), "all-day": t("all day"), summer: t("summer"), winter: t("winter"),
    "all-year": t("all year"), weekday: t("weekdays"), weekend: t("weekends"), holiday: t("holidays") };
  const KINDS = { tiered: t("tiered"), "time-of-use": t("time-of-use"), "critical-peak": t("critical peak"),
    "peak-time-rebate": t("peak-time rebate"), hourly: t("hourly"), flat: t("flat"), demand: t("demand charges") };
  const label = (map, value) => (value in map ? map[value] : String(value).replace(/_/g, " "));
  const state = { meters: [], prices: [], messages: [], events: [], health: null, rate: null, rateAsked: false, cycleTier: null, shownPrice: null };
  let retryMs = 500;
  let socket = null;

  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(LOCALE,
    { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const deg = (celsius, difference) => {
    const v = FAHRENHEIT ? (difference ? celsius * 9 / 5 : celsius * 9 / 5 + 32) : celsius;
    const r = Math.round(v * 10) / 10;
    return fmt(r, Number.isInteger(r) ? 0 : 1);
  };
  const when = (iso, timeStyle = "short") => {
    if (!iso) return "–";
    try { return new Date(iso).toLocaleString(LOCALE, { timeZone: tz, dateStyle: "medium", timeStyle }); }
    catch (e) { return new Date(iso).toLocaleString(LOCALE); }
  };
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls; if (text !== undefined) n.textContent = text; return n; };

  function renderMeter() {
    const m = state.meters[0];
    if (!m) return;
    // The words beside it say which way the power flows: the figure is its size, to 10 W.
    $("demand").textContent = m.demand_kw === null || m.demand_kw === undefined ? fmt(m.demand_kw, 2) : fmt(Math.abs(m.demand_kw), 2);
    $("demand-direction").textContent = m.demand_kw === null ? "\u00a0" :
      (m.demand_kw < 0 ? t("Sending power to the grid") : t("Drawing power from the grid"));
    $("delivered").textContent = fmt(m.summation_delivered_kwh, 1);  // as a meter's register reads
    $("received").textContent = fmt(m.summation_received_kwh, 1);
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

  const unitPrice = (value, currency) => {  // a price per kWh, to the tenth of a cent
    try { return new Intl.NumberFormat(LOCALE, { style: "currency", currency, maximumFractionDigits: 4 }).format(value); }
    catch (e) { return value + " " + currency; }
  };
  const perKwh = (value, currency) => {
    try { return new Intl.NumberFormat(LOCALE, { style: "currency", currency, maximumFractionDigits: 4 }).format(value) + " /kWh"; }
    catch (e) { return value + " " + currency + " /kWh"; }
  };

  // A tier as the meter counts it: by the name the meter gives it (its price labels), else "Tier x of
  // y" only when x is one of the y (a CPP tier 4 on a rate of 3 is "Tier 4", never "4 of 3").
  function meterTier(p) {
    const rates = (state.rate && state.rate.meter) || [];
    const published = rates.find((m) => m.meter_id === p.meter_id) || rates[0];
    const name = published && published.tier_labels && published.tier_labels[String(p.tier)];
    if (name) return label(PERIODS, name);
    if (!p.tier) return t("No tier");
    return p.number_of_tiers >= p.tier ? t("Tier {tier} of {tiers}", { tier: p.tier, tiers: p.number_of_tiers }) : t("Tier {tier}", { tier: p.tier });
  }

  // One price truth. With a rate plan, the card shows the plan's price now, the one the chart and the
  // costs use (the period's price plus the adder of the cycle's tier), named by the plan's period and
  // tier; when the meter announces another price (a critical-peak price the plan does not carry), it is
  // shown beneath, named as the meter's. Without a plan, or when the meter's prices replace the plan's
  // (tariff.use_meter_prices), the meter's price is the one.
  function renderPrice() {
    const current = state.prices[0] && state.prices[0].current;
    const r = state.rate;
    const meterLine = $("price-meter");
    document.body.className = document.body.className.replace(/\btier-\d+\b/g, "").trim();
    // Until the rate sheet has answered, no price: the meter's would flash and then be replaced.
    if (!state.rateAsked) { $("price").textContent = "–"; state.shownPrice = null; renderNow(); return; }
    if (r && r.plan && r.now && !r.uses_meter_prices) {
      const n = r.now;
      const adders = n.tier_prices_per_kwh || [];
      const tier = adders.length > 1 && state.cycleTier ? Math.min(state.cycleTier, adders.length) : null;
      const price = n.price_per_kwh + (adders.length ? adders[(tier || 1) - 1] : 0);
      $("price").textContent = unitPrice(price, r.currency);  // "/kWh" follows in the page, free to wrap
      state.shownPrice = { text: unitPrice(price, r.currency), end: null };
      const bits = [r.label];
      if (n.period) bits.push(label(PERIODS, n.period));
      if (n.critical_peak) bits.push(t("critical peak"));
      if (tier && !HIDE.has("current_tier")) bits.push(t("Tier {tier} of {tiers}", { tier, tiers: adders.length }));
      $("price-detail").textContent = bits.join(" · ");
      const other = current && Math.abs(current.price_per_kwh - price) >= 0.005;
      meterLine.textContent = other ? t("Your meter announces {price} ({name}); the costs here use your rate plan.", {
        price: perKwh(current.price_per_kwh, current.currency), name: current.rate_label || meterTier(current) }) : "";
      meterLine.hidden = !other;
      const level = n.critical_peak ? 3 : n.period === "on-peak" ? 3 : n.period === "mid-peak" ? 2 : n.period ? 1 : 0;
      if (level) document.body.classList.add("tier-" + level);
      renderNow();
      return;
    }
    meterLine.textContent = ""; meterLine.hidden = true;
    if (!current) {
      $("price").textContent = "–"; $("price-detail").textContent = t("No price published");
      state.shownPrice = null; renderNow(); return;
    }
    $("price").textContent = unitPrice(current.price_per_kwh, current.currency);
    state.shownPrice = { text: unitPrice(current.price_per_kwh, current.currency), end: current.end || null };
    const rate = current.rate_label || t("Rate");
    $("price-detail").textContent = HIDE.has("current_tier") ? rate : `${rate} · ${meterTier(current)}`;
    if (current.tier) document.body.classList.add("tier-" + Math.min(current.tier, 3));
    renderNow();
  }

  function renderEvents() {
    const list = $("events"); keepFocus(list); list.replaceChildren();
    const shown = state.events.filter((e) => !FINISHED.has(e.status))
      .concat(state.events.filter((e) => FINISHED.has(e.status)).slice(-3));
    shownEvents = shown;
    if (!shown.length) { list.append(el("li", "empty", t("No event announced."))); return; }
    for (const e of shown) {
      const li = el("li", "event");
      const id = e.issuer_event_id;
      li.dataset.eventId = id;
      // "completed" is the home's part done; an event it did not take part in (every device out, opted
      // out from the start) only ended.
      const sat = e.status === "completed" && e.took_part === false;
      li.append(el("span", "tag tag-" + (sat ? "ended" : e.status), sat ? t("ended without taking part") : label(STATUS, e.status)),
        el("strong", "", t("Event {id}", { id })));
      if (e.participation === "opted_out") li.append(el("span", "tag tag-opted_out", t("opted out")));
      const asks = [];
      if (e.cooling_offset_c !== null) asks.push(inUnit(t("cooling +{value} °C", { value: deg(e.cooling_offset_c, true) })));
      if (e.heating_offset_c !== null) asks.push(inUnit(t("heating −{value} °C", { value: deg(e.heating_offset_c, true) })));
      if (e.cooling_setpoint_c !== null) asks.push(inUnit(t("cool to {value} °C", { value: deg(e.cooling_setpoint_c) })));
      if (e.heating_setpoint_c !== null) asks.push(inUnit(t("heat to {value} °C", { value: deg(e.heating_setpoint_c) })));
      if (e.average_load_adjustment_pct !== null) asks.push(t("load {value} %", { value: (e.average_load_adjustment_pct > 0 ? "+" : "") + e.average_load_adjustment_pct }));
      if (e.duty_cycle_pct !== null) asks.push(t("switched on and off (on {value} %)", { value: e.duty_cycle_pct }));
      const minutes = t("{minutes} min", { minutes: e.duration_min });
      const span = el("span", "meta");
      const sameDay = localDay(e.start) === localDay(e.end);
      span.append(el("time", "", when(e.start)), " – ", el("time", "", sameDay ? clock(e.end) : when(e.end)),
        ` · ${minutes} · ${label(CRITICALITY, e.criticality)}`);
      span.children[0].setAttribute("datetime", e.start); span.children[1].setAttribute("datetime", e.end);
      if (e.scheduled_start && e.start && Date.parse(e.scheduled_start) !== Date.parse(e.start)) {
        span.append(" · " + t("randomised from {time}", { time: clock(e.scheduled_start) }));
      }
      li.append(span);
      if (e.outcome && e.outcome !== e.status) {
        li.append(el("span", "meta", t("Outcome: {outcome}", { outcome: label(OUTCOMES, e.outcome) })));
      }
      li.append(el("span", "meta", `${e.device_classes.map((d) => label(DEVICES, d)).join(", ")}${asks.length ? " · " + asks.join(", ") : ""}`));
      if (e.status === "active" || e.status === "scheduled") {
        const key = `event:${e.meter_id}:${e.issuer_event_id}`;
        const base = eventBase(e);
        const row = el("div", "actions");
        if (e.participation === "opted_out") {
          row.append(actionButton(t("Opt back in"), t("Take part in event {id} again", { id }), key, "opt-in",
            base + "opt-in", null, "events", t("You take part in event {id} again.", { id })));
        } else {
          row.append(actionButton(t("Opt out"), t("Opt out of event {id}", { id }), key, "opt-out",
            base + "opt-out", null, "events", t("You opted out of event {id}; the utility is told.", { id })));
        }
        li.append(row);
      }
      li.append(renderDetail(e));
      list.append(li);
    }
    restoreFocus(list);
    scheduleDetails();
    followClock();
    renderNow();
  }

  // -- per event: what the EMS did, who was taken out, and the load change measured -------------
  // Fetched lazily for the events shown (actions, load change, and the devices the EMS holds),
  // again on each push about events and every 30 s while an event runs or is still measured;
  // a finished event's figures are kept once final. Each event keeps one detail node across
  // redraws, so its aria-live parts announce real changes only and the focus stays put.
  const FINISHED = new Set(["completed", "cancelled", "superseded"]);
  const OUTCOMES = { completed: t("completed"), opted_out: t("opted out"), cancelled: t("cancelled"), superseded: t("superseded"),
    partially_completed_opt_out: t("partly done, then opted out"), partially_completed_opt_in: t("partly done, then opted back in"),
    completed_no_participation: t("completed without taking part") };
  const COMMANDS = { on: t("switched on"), off: t("switched off"), setpoints: t("setpoints changed"),
    relay_event: t("event handed to the device"), cancel_event: t("event withdrawn from the device") };
  const HOLDS = { off: t("kept off"), on: t("kept on"), offset: t("setpoint moved"), setpoints: t("setpoints set"),
    duty_cycle: t("cycled on and off"), relay_event: t("running the event itself") };
  const DETAIL_EVERY_MS = 30000;  // while an event runs or is still measured
  const ACTIONS_SHOWN = 5;
  const details = new Map();  // "meter:id" -> { node, actions, change, devices, settled, seq, fetchedAt }
  let shownEvents = [];
  let devicesHeld = [];  // /api/v1/devices, fetched with the details of a running event
  let detailTimer = null;
  let lastDetailRun = 0;
  const clockAt = (() => { try { return new Intl.DateTimeFormat(LOCALE, { timeZone: tz, hour: "numeric", minute: "2-digit" }); }
    catch (e) { return new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit" }); } })();
  const clockSec = (() => { try { return new Intl.DateTimeFormat(LOCALE, { timeZone: tz, hour: "numeric", minute: "2-digit", second: "2-digit" }); }
    catch (e) { return new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit", second: "2-digit" }); } })();
  const clock = (iso) => (iso ? clockAt.format(new Date(iso)) : "–");
  const localDay = (iso) => { try { return new Date(iso).toLocaleDateString("en-CA", { timeZone: tz }); } catch (e) { return String(iso).slice(0, 10); } };
  const eventKey = (e) => `${e.meter_id}:${e.issuer_event_id}`;
  const eventBase = (e) => `/api/v1/events/${encodeURIComponent(e.meter_id)}/${e.issuer_event_id}/`;
  const lasting = (e) => e.status === "active" || e.status === "scheduled";
  const kw = (v) => (v === null || v === undefined ? "–" : fmt(v, 2) + " kW");
  const energy = (v) => (v === null || v === undefined ? "–" : fmt(v, Math.abs(v) < 1 ? 3 : 2) + " kWh");
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };

  // A kW change as a figure: a reduction under its own name, more than usual neutrally (and not as
  // "−0.00": under 5 W either way is no change).
  function kwChange(value, name, reduced, more) {
    if (value === null || value === undefined) return [name, reduced, "–"];
    if (value <= -0.005) return [name + "-more", more, t("{kw} kW more than usual", { kw: fmt(-value, 2) })];
    return [name, reduced, kw(Math.max(0, value))];
  }

  // The reduction in the last slot measured (a live demand sample while no interval covers it yet).
  function reducedNow(c) {
    const slots = (c && c.intervals) || [];
    for (let i = slots.length - 1; i >= 0; i--) {
      const s = slots[i];
      if (s.part === "event" && s.baseline_kw !== null && s.actual_kw !== null) return s.baseline_kw - s.actual_kw;
    }
    return null;
  }

  function detailFor(e) {
    const k = eventKey(e);
    let d = details.get(k);
    if (!d) {
      const node = el("div", "event-detail");
      node.id = `event-detail-${e.meter_id}-${e.issuer_event_id}`.replace(/[^\w-]/g, "_");
      const change = el("section", "ev-part ev-change");
      const changeTitle = el("h3", "", t("Load change"));
      changeTitle.id = node.id + "-change";
      change.setAttribute("aria-labelledby", changeTitle.id);
      const status = el("p", "ev-status", t("Loading…"));
      status.setAttribute("role", "status"); status.setAttribute("aria-live", "polite");
      const how = el("details", "ev-how");
      how.append(el("summary", "", t("How it is measured")), el("p", "sub ev-how-text"));
      const baseline = el("p", "sub ev-baseline");
      baseline.hidden = true;
      change.append(changeTitle, status, el("dl", "ev-figures"), baseline, el("p", "sub ev-note"), how);
      const did = el("section", "ev-part ev-did");
      const didTitle = el("h3", "", t("What the EMS did"));
      didTitle.id = node.id + "-did";
      did.setAttribute("aria-labelledby", didTitle.id);
      const devices = el("div", "ev-devices");
      devices.setAttribute("aria-live", "polite");
      const fold = el("details", "ev-fold");  // the log of commands folds beneath what the EMS holds
      fold.append(el("summary", "", t("Commands sent")), el("div", "ev-actions"));
      did.append(didTitle, devices, fold);
      node.append(change, did);
      d = { node, actions: null, change: null, settled: false, seq: 0, fetchedAt: 0, devicesSig: null, actionsSig: null };
      details.set(k, d);
    }
    return d;
  }

  function renderDetail(e) {
    const d = detailFor(e);
    const active = document.activeElement;
    const focused = active && d.node.contains(active) && active.dataset.key ? active.dataset.key : null;
    fillChange(d, e);
    fillDevices(d, e);
    fillActions(d, e);
    if (focused && !d.node.contains(document.activeElement)) {
      const target = [...d.node.querySelectorAll("button")].find((b) => b.dataset.key === focused);
      if (target) target.focus();
    }
    return d.node;
  }

  function fillChange(d, e) {
    const [, status, figures, baseline, note, how] = d.node.querySelector(".ev-change").children;
    const c = d.change;
    const rows = [];
    let text;
    if (!c) text = d.failed ? t("Load change not available: {reason}", { reason: d.failed }) : t("Loading…");
    else if (c.status === "scheduled") text = t("Measured once the event starts.");
    else if (c.status === "insufficient history") text = t("Not enough history yet to know what the home would have used, so no saving is shown.");
    else if (c.status === "final") text = t("Final figures.");
    else if (e.status === "active") text = t("Live: measured while the event runs.");
    else text = t("Still measuring: the hours after the event count too, until {time}.", { time: clock(c.rebound_end) });
    setText(status, text);
    if (c && c.status !== "scheduled" && c.status !== "insufficient history") {
      // A reduction below zero is no saving: said neutrally, "x kW more than usual", never in green.
      const now = reducedNow(c);
      if (e.status === "active" && c.status === "live" && now !== null) rows.push(kwChange(now, "now", t("Reduced now"), t("Now")));
      rows.push(kwChange(c.kw_reduced, "average", t("Average reduction"), t("On average")));
      rows.push(["shifted", t("Energy shifted"), energy(c.energy_shifted_kwh)]);
      const saved = c.money_saved === null || c.money_saved === undefined ? null : c.money_saved;
      if (saved !== null && saved <= -0.005) rows.push(["cost-more", t("Cost"), t("{amount} more than usual", { amount: money(-saved, c.currency) })]);
      else rows.push(["saved", t("Money saved"), saved === null ? "–" : money(Math.max(0, saved), c.currency)]);
      if (c.rebate_earned !== null && c.rebate_earned !== undefined) rows.push(["rebate", t("Rebate earned"), money(c.rebate_earned, c.currency)]);
    }
    const sig = JSON.stringify(rows);
    if (figures.dataset.sig !== sig) {
      figures.dataset.sig = sig; figures.replaceChildren();
      for (const [name, term, value] of rows) {
        const box = el("div", "ev-figure ev-" + name);
        box.append(el("dt", "", term), el("dd", "", value));
        figures.append(box);
      }
    }
    figures.hidden = !rows.length;
    // Without a baseline the API's note says why (its words are the API's); otherwise it is folded away.
    const short = c && c.status === "insufficient history" ? c.note_text || c.note || "" : "";
    setText(note, short);
    note.hidden = !short;
    // The baseline in one sentence, in sight: what "usual" means for these figures.
    const days = (c && c.status !== "insufficient history" && c.status !== "scheduled" && c.baseline && c.baseline.days) || [];
    const sentence = days.length ? t("Usual means what your home used at the same hours on {count} similar days before the event; the figures compare this event with that.", { count: count(days.length) }) : "";
    setText(baseline, sentence);
    baseline.hidden = !sentence;
    const bits = [];
    if (c && c.status !== "insufficient history" && c.status !== "scheduled") {
      bits.push(t("As of {time}", { time: clockSec.format(new Date(c.as_of)) }));
      if (days.length) bits.push(t("baseline: the average of {count} similar days before the event", { count: count(days.length) }));
      if (c.note) bits.push(c.note_text || c.note);
    }
    setText(how.lastChild, bits.join(" · "));
    how.hidden = !bits.length;
  }

  // The API's reasons and notes in the reader's language (reason_text, note_text), else its English.
  const reasonOf = (p) => p.reason_text || p.reason;
  const noteOf = (x) => x.note_text || x.note;

  function fillDevices(d, e) {
    const box = d.node.querySelector(".ev-devices");
    const out = new Set((e.excluded_devices || []).map((x) => x.device_id));
    const held = lasting(e) ? devicesHeld.filter((x) => x.held_by && x.held_by.issuer_event_id === e.issuer_event_id
      && !out.has(x.device_id)) : [];
    // Devices of the classes the event names that it does not hold (a protection, another holder): say why.
    const classes = new Set(e.device_classes || []);
    const idle = e.status === "active" && e.participation !== "opted_out" ? devicesHeld.filter((x) => !out.has(x.device_id)
      && !(x.held_by && x.held_by.issuer_event_id === e.issuer_event_id) && (x.device_class || []).some((c) => classes.has(c))) : [];
    // Before the start: the devices of the event's classes, which the customer may take out already.
    const coming = e.status === "scheduled" && e.participation !== "opted_out" ? devicesHeld.filter((x) => !out.has(x.device_id)
      && (x.device_class || []).some((c) => classes.has(c))) : [];
    const sig = JSON.stringify([e.status, e.participation, e.addresses_devices_here, held.map((x) => [x.device_id, x.held_by.action, reasonOf(x.held_by)]),
      [...out], idle.map((x) => [x.device_id, noteOf(x), x.held_by && reasonOf(x.held_by)]), coming.map((x) => x.device_id),
      d.devicesLoaded || false]);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig; box.replaceChildren();
    const id = e.issuer_event_id;
    if (lasting(e)) {
      if (held.length) {
        const list = el("ul", "ev-list ev-held");
        for (const x of held) {
          const li = el("li");
          const what = el("span", "ev-what");
          what.append(el("strong", "", x.name), " · " + label(HOLDS, x.held_by.action));
          li.append(what, el("span", "meta", reasonOf(x.held_by)));
          if (lasting(e) && e.participation !== "opted_out") {
            li.append(deviceButton(e, x, true));
          }
          list.append(li);
        }
        box.append(el("p", "ev-sub", t("Holds now:")), list);
      } else if (!e.addresses_devices_here) {
        box.append(el("p", "sub", t("No device here takes part in this event.")));
      } else if (e.participation === "opted_out") {
        box.append(el("p", "sub", t("You opted out: the EMS put your devices back.")));
      } else if (coming.length) {
        const list = el("ul", "ev-list ev-coming");
        for (const x of coming) {
          const li = el("li");
          const what = el("span", "ev-what");
          what.append(el("strong", "", x.name));
          li.append(what, deviceButton(e, x, true));
          list.append(li);
        }
        box.append(el("p", "ev-sub", t("Takes part when the event starts:")), list);
      } else if (d.devicesLoaded) {
        box.append(el("p", "sub", e.status === "active" ? t("The EMS holds no device for this event now.") : t("Nothing yet: the event has not started.")));
      }
    }
    if (idle.length) {
      const list = el("ul", "ev-list ev-idle");
      for (const x of idle) {
        const li = el("li");
        const what = el("span", "ev-what");
        what.append(el("strong", "", x.name), " · " + t("left as it is"));
        li.append(what);
        const why = noteOf(x) || (x.held_by && reasonOf(x.held_by));
        if (why) li.append(el("span", "meta", why));
        list.append(li);
      }
      box.append(el("p", "ev-sub", t("Not held now:")), list);
    }
    if (out.size) {
      const list = el("ul", "ev-list ev-out");
      for (const x of e.excluded_devices) {
        const li = el("li");
        const what = el("span", "ev-what");
        what.append(el("strong", "", x.name), " · " + t("taken out"));
        li.append(what);
        if (lasting(e)) li.append(deviceButton(e, x, false));
        list.append(li);
      }
      box.append(el("p", "ev-sub", t("Taken out by you:")), list);
    }
    if (!box.childElementCount && !lasting(e)) box.append(el("p", "sub", t("The EMS holds no device for this event now.")));
  }

  function deviceButton(e, x, takeOut) {
    const id = e.issuer_event_id;
    const key = `device:${eventKey(e)}:${x.device_id}`;
    const path = `${eventBase(e)}devices/${encodeURIComponent(x.device_id)}/${takeOut ? "opt-out" : "opt-in"}`;
    const b = el("button", "button button-small" + (takeOut ? "" : " button-quiet"), takeOut ? t("Take out") : t("Put back"));
    b.type = "button"; b.dataset.key = key; b.dataset.action = takeOut ? "device-opt-out" : "device-opt-in";
    b.dataset.deviceId = x.device_id;
    b.setAttribute("aria-label", takeOut ? t("Take {device} out of event {id}", { device: x.name, id })
      : t("Put {device} back into event {id}", { device: x.name, id }));
    b.addEventListener("click", async () => {
      const status = $("events-status");
      b.disabled = true; status.textContent = t("Sending…");
      try {
        const item = await post(path);
        focusKey = key;
        if (item && item.issuer_event_id !== undefined) upsert(state.events, item, "issuer_event_id");
        renderEvents();
        status.textContent = takeOut ? t("{device} is out of event {id}; the EMS puts it back.", { device: x.name, id })
          : t("{device} takes part in event {id} again.", { device: x.name, id });
        refreshDetails(true);
        setTimeout(() => refreshDetails(true), 1500);  // the cycle restores the device, then logs it
      } catch (err) {
        b.disabled = false; failed(status, err.message);
      }
    });
    return b;
  }

  function fillActions(d, e) {
    const box = d.node.querySelector(".ev-actions");
    const actions = d.actions || [];
    const sig = JSON.stringify(actions.slice(-ACTIONS_SHOWN)) + actions.length;
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig; box.replaceChildren();
    if (!d.actions) return;
    const summary = box.parentElement.querySelector("summary");
    setText(summary, actions.length ? t("Commands sent ({count})", { count: count(actions.length) }) : t("Commands sent"));
    if (!actions.length) { box.append(el("p", "sub", t("No device command sent for this event."))); return; }
    const list = el("ol", "ev-list ev-log");
    for (const a of actions.slice(-ACTIONS_SHOWN)) {
      const li = el("li", a.ok ? "ok" : "failed");
      const at = el("time", "", clockSec.format(new Date(a.at)));
      at.setAttribute("datetime", a.at);
      let what = label(COMMANDS, a.action);
      if (a.detail && a.detail.cooling_setpoint_c !== undefined) what += " " + inUnit(t("(cooling {value} °C)", { value: deg(a.detail.cooling_setpoint_c) }));
      if (a.detail && a.detail.heating_setpoint_c !== undefined) what += " " + inUnit(t("(heating {value} °C)", { value: deg(a.detail.heating_setpoint_c) }));
      if (a.source === "restore") what = t("put back: {action}", { action: what });
      li.append(at, " ", el("strong", "", a.device), ` · ${what} · `,
        el("span", a.ok ? "ev-ok" : "ev-failed", a.ok ? t("done") : t("failed: {error}", { error: a.error || "?" })));
      list.append(li);
    }
    box.append(list);
    if (actions.length > ACTIONS_SHOWN) box.append(el("p", "sub", t("and {count} earlier", { count: count(actions.length - ACTIONS_SHOWN) })));
  }

  // Fetch what is missing or may have changed for the events shown, then draw it.
  async function refreshDetails(force) {
    lastDetailRun = Date.now();
    const events = shownEvents.slice();
    const due = events.filter((e) => {
      const d = detailFor(e);
      if (d.settled) return false;
      if (force || !d.fetchedAt) return true;
      return lasting(e) || (d.change && d.change.status === "live");
    });
    if (!due.length) return;
    if (due.some(lasting)) {
      try { devicesHeld = (await fetchJson("/api/v1/devices")).devices || []; renderNow(); } catch (err) { /* keep the last list */ }
    }
    await Promise.all(due.map(async (e) => {
      const d = detailFor(e);
      const seq = ++d.seq;
      const base = eventBase(e);
      const finished = FINISHED.has(e.status);
      const [actions, change] = await Promise.all([
        fetchJson(base + "actions").then((r) => r.actions, () => d.actions),
        fetchJson(base + "load-change").then((r) => { d.failed = null; return r; }, (err) => { d.failed = err.message; return d.change; }),
      ]);
      if (seq !== d.seq) return;  // a newer fetch for this event went out meanwhile
      d.actions = actions; d.change = change; d.devicesLoaded = true; d.fetchedAt = Date.now();
      // A finished event changes no more once its figures are final (or cannot be had).
      d.settled = finished && actions !== null && change !== null && change.status !== "live" && change.status !== "scheduled"
        && Date.now() - Date.parse(e.end) > 5000;  // the restores after the end are logged by then
      const current = state.events.find((x) => eventKey(x) === eventKey(e)) || e;
      renderDetail(current);
    }));
  }

  function scheduleDetails(delayMs = 250) {
    clearTimeout(detailTimer);
    detailTimer = setTimeout(() => refreshDetails(false), delayMs);
  }
  setInterval(() => {
    if (Date.now() - lastDetailRun >= DETAIL_EVERY_MS - 500) refreshDetails(false);
  }, DETAIL_EVERY_MS / 3);

  // Ask for a fresh snapshot just after an event shown starts or ends, so its status follows the clock.
  let clockTimer = null;
  function followClock() {
    clearTimeout(clockTimer);
    const now = Date.now();
    const next = shownEvents.flatMap((e) => [Date.parse(e.start), Date.parse(e.end)]).filter((x) => x > now).sort((a, b) => a - b)[0];
    if (next === undefined || next - now > 3600e3) return;
    clockTimer = setTimeout(() => { if (socket && socket.readyState === WebSocket.OPEN) socket.send("snapshot"); }, next - now + 1500);
  }

  // -- Now: what is happening, at the top of the page --------------------------------------------
  // The event that matters most (running, else the next one), its time left, the price and until
  // when, and what the EMS holds; opting out is there as a secondary action, the details below.
  const left = (ms) => {  // "1 h 5 min", kept on one line
    const minutes = Math.max(1, Math.round(ms / 60000));
    const text = minutes < 60 ? t("{minutes} min", { minutes }) : minutes % 60 === 0 ? t("{hours} h", { hours: minutes / 60 })
      : t("{hours} h {minutes} min", { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
    return text.replace(/ /g, "\u00a0");
  };
  const nowClockAt = (() => { try { return new Intl.DateTimeFormat(LOCALE, { timeZone: tz, hour: "numeric", minute: "2-digit" }); }
    catch (e) { return new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit" }); } })();
  const nowClock = (iso) => nowClockAt.format(new Date(iso)).replace(/ /g, "\u00a0");  // "7:00 PM", not "07:00 PM"
  let skewMs = 0;  // the appliance's clock minus this browser's (a simulated clock in a demo or a test)
  let nowTimer = null;
  let nowDevicesAt = 0;
  let nowFocus = false;  // its button was used: the redrawn one takes the focus
  function renderNow() {
    const what = $("now-what"); if (!what) return;
    clearTimeout(nowTimer); nowTimer = setTimeout(renderNow, 30000);  // the time left follows the clock
    if (Date.now() - nowDevicesAt > 60000) {  // what the EMS holds, also without an event
      nowDevicesAt = Date.now();
      fetchJson("/api/v1/devices").then((r) => { devicesHeld = r.devices || []; renderNow(); }, () => {});
    }
    const now = Date.now() + skewMs;
    const open = state.events.filter((e) => lasting(e) && Date.parse(e.end) > now);
    const e = open.find((x) => x.status === "active") || open.sort((a, b) => Date.parse(a.start) - Date.parse(b.start))[0];
    const box = $("now");
    box.className = "now" + (e ? (e.status === "active" ? " now-active" : " now-coming") : "");
    let text;
    if (!e) text = t("No energy event. The EMS follows your rules.");
    else if (e.participation === "opted_out") text = t("You opted out of event {id} ({start}–{end}).", { id: e.issuer_event_id, start: nowClock(e.start), end: nowClock(e.end) });
    else if (e.status === "active") text = t("Energy event {id}: please use less until {end} ({left} left).", { id: e.issuer_event_id, end: nowClock(e.end), left: left(Date.parse(e.end) - now) });
    else text = t("Energy event {id} from {start} to {end} (starts in {left}).", { id: e.issuer_event_id, start: nowClock(e.start), end: nowClock(e.end), left: left(Date.parse(e.start) - now) });
    setText(what, text);
    const facts = [];
    const shown = state.shownPrice;  // the price tile's (one price truth: the plan's, else the meter's)
    if (shown) {
      const price = shown.text;
      facts.push(shown.end ? t("Price {price}/kWh until {time}", { price, time: nowClock(shown.end) }) : t("Price {price}/kWh", { price }));
    }
    const held = devicesHeld.filter((x) => x.held_by);
    facts.push(held.length ? t("The EMS holds {count}: {names}", { count: count(held.length), names: held.map((x) => x.name).join(", ") })
      : t("The EMS holds no device now"));
    const list = $("now-facts");
    const sig = JSON.stringify(facts);
    if (list.dataset.sig !== sig) { list.dataset.sig = sig; list.replaceChildren(...facts.map((f) => el("li", "", f))); }
    const row = $("now-actions");
    const key = e ? `now:${eventKey(e)}` : "";
    const rowSig = e ? [key, e.participation].join() : "";
    if (row.dataset.sig === rowSig) {  // redrawn already (a push before the answer): it takes the focus now
      const drawn = row.querySelector("button");
      if (nowFocus && drawn) { nowFocus = false; drawn.focus(); }
      return;
    }
    const hadFocus = row.contains(document.activeElement);
    row.dataset.sig = rowSig; row.replaceChildren();
    if (!e) return;
    const id = e.issuer_event_id;
    const button = e.participation === "opted_out"
      ? actionButton(t("Opt back in"), t("Take part in event {id} again", { id }), key, "opt-in", eventBase(e) + "opt-in", null,
        "events", t("You take part in event {id} again.", { id }), "now-status")
      : actionButton(t("Opt out"), t("Opt out of event {id}", { id }), key, "opt-out", eventBase(e) + "opt-out", null,
        "events", t("You opted out of event {id}; the utility is told.", { id }), "now-status");
    button.classList.add("button-quiet");
    const more = el("a", "now-more", t("What the EMS does for this event"));
    more.href = "#events-title";
    row.append(more, button);
    if (hadFocus || nowFocus) { nowFocus = false; button.focus(); }
  }

  // -- actions: confirm or read a message, opt out of or back into an event -------------------
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let focusKey = null;  // the item whose button had the focus when the list was redrawn

  // What could not be done stays said until it is done or the page has its link back (a snapshot
  // after a reconnect clears it: "Not done" about a moment that has passed misleads).
  function failed(status, reason) {
    status.textContent = t("Not done: {reason}", { reason }); status.dataset.failed = "1";
  }
  function clearFailures() {
    for (const n of document.querySelectorAll("[data-failed]")) { n.textContent = ""; delete n.dataset.failed; }
  }

  async function post(path, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf };
    if (body) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(path, { method: "POST", credentials: "same-origin", headers,
        body: body ? JSON.stringify(body) : undefined });
    } catch (e) {  // the browser's own words ("Failed to fetch") say nothing to a homeowner
      throw new Error(t("the appliance did not answer; check your connection and try again"));
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
    return data;
  }

  function upsert(list, item, idKey) {
    const i = list.findIndex((x) => x.meter_id === item.meter_id && x[idKey] === item[idKey]);
    if (i >= 0) list[i] = item; else list.push(item);
  }

  function actionButton(text, label, key, action, path, body, topic, done, statusId) {
    const b = el("button", "button" + (action === "read" || action === "opt-in" ? " button-quiet" : ""), text);
    b.type = "button"; b.dataset.key = key; b.dataset.action = action;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", async () => {
      const status = $(statusId || topic + "-status");
      b.disabled = true; status.textContent = t("Sending…");
      try {
        const item = await post(path, body);
        if (statusId) nowFocus = true; else focusKey = key;  // the Now panel keeps its own focus (renderNow)
        if (topic === "events") { upsert(state.events, item, "issuer_event_id"); renderEvents(); }
        else { upsert(state.messages, item, "message_id"); renderMessages(); }
        status.textContent = done; delete status.dataset.failed;
      } catch (e) {
        b.disabled = false; failed(status, e.message);
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
    $("messages-read-all").hidden = state.messages.filter((m) => !m.read).length < 2;
    if (!state.messages.length) { list.append(el("li", "empty", t("No message."))); return; }
    for (const m of state.messages) {
      const li = el("li");
      const text = m.display_text || m.text;
      li.dataset.messageId = m.message_id;
      li.append(el("span", "tag tag-" + m.importance, label(IMPORTANCE, m.importance)));
      // Who it is from: a public broadcast (a grid or weather alert for everyone), the utility
      // writing to this home, or the EMS itself.
      li.append(el("span", "tag tag-origin", m.origin === "public" ? t("public alert") : m.origin === "local" ? t("from the EMS") : t("from your utility")));
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

  $("messages-read-all").addEventListener("click", async () => {
    const b = $("messages-read-all"); const status = $("messages-status");
    b.disabled = true; status.textContent = t("Sending…");
    try {
      const r = await post("/api/v1/messages/read-all");
      state.messages = r.messages; renderMessages();
      status.textContent = t("{count} messages marked read.", { count: count(r.marked) });
      $("messages-title").tabIndex = -1; $("messages-title").focus();  // the button is gone: keep the place
    } catch (e) {
      failed(status, e.message);
    } finally { b.disabled = false; }
  });

  // What cannot work now, in the homeowner's words (health's problems, by their code).
  const PROBLEMS = {
    disk_full: t("The appliance's data disk is full: new readings are not being saved. Devices are still controlled. Free some space; saving resumes by itself."),
    unwritable: t("The appliance cannot save data to its database: new readings are not being saved. Devices are still controlled; saving resumes by itself once the database works."),
  };

  function renderProblems() {
    const box = $("problems");
    const problems = (state.health && state.health.problems) || [];
    const text = problems.map((p) => PROBLEMS[p.problem] || PROBLEMS.unwritable).join(" ");
    if (box.textContent !== text) box.textContent = text;
    box.hidden = !text;
  }

  function renderHealth() {
    renderProblems();
    const h = state.health; if (!h) return;
    const STATES = { ok: t("ok"), degraded: t("degraded"), starting: t("starting") };
    // In a homeowner's words: how much the meter said, and how much of it could not be read (the
    // counts of malformed and refused frames are the API's, for an installer).
    const unread = h.frames.malformed + h.frames.rejected;
    $("health").textContent = unread
      ? t("Appliance {status} · {received} messages heard from the meter, {unread} of them unreadable", {
        status: label(STATES, h.status), received: fmt(h.frames.received, 0), unread: fmt(unread, 0) })
      : t("Appliance {status} · {received} messages heard from the meter", { status: label(STATES, h.status), received: fmt(h.frames.received, 0) });
  }

  let costTimer = null;
  let lastIntervalStart = null;
  const money = (v, cur) => {
    if (v === null || v === undefined) return "–";
    v = Math.round(v * 100) / 100; if (v === 0) v = 0;  // −0.001 is "$0.00", never "−$0.00"
    try { return new Intl.NumberFormat(LOCALE, { style: "currency", currency: cur || "USD" }).format(v); }
    catch (e) { return Number(v).toFixed(2) + " " + (cur || ""); }
  };
  const kwh = (v) => (v === null || v === undefined ? "–" : fmt(v, 2) + " kWh");
  // A rate period's hours as the reader's clock shows them ("4:00 PM", "16:00"); one that runs past
  // midnight said as the two parts of the day it covers, not "21:00–16:00".
  const clockOf = (hhmm) => {
    const [h, m] = hhmm.split(":").map(Number);
    if (h === 24 || (h === 0 && m === 0)) return t("midnight");
    return new Date(Date.UTC(2024, 0, 1, h, m)).toLocaleTimeString(LOCALE, { hour: "numeric", minute: "2-digit", timeZone: "UTC" });
  };
  const hours = (start, end) => {
    if (start === end) return t("all day");
    if (end < start && end !== "00:00") return t("before {end} and from {start}", { start: clockOf(start), end: clockOf(end) });
    return `${clockOf(start)}–${clockOf(end)}`;
  };
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
      // Demand charges: the cycle's highest demand so far, when it was, and what it adds to the bill.
      const peaks = (c && c.demand) || [];
      const top = peaks.filter((d) => d.at).sort((a, b) => b.peak_kw - a.peak_kw)[0];
      $("demand-tile").hidden = !peaks.length;
      if (peaks.length) {
        $("cost-demand").textContent = top ? fmt(top.peak_kw, 1) + " kW" : "–";
        $("cost-demand-when").textContent = top
          ? t("{when}; adds {amount} to the bill", { when: when(top.at), amount: money(c.demand_charges, cur) })
          : t("no demand read yet this cycle");
      }
      if (c && c.current_tier !== state.cycleTier) { state.cycleTier = c.current_tier; renderPrice(); }
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
      for (const d of peaks) {
        if (d.at) notes.push(t("{label}: {kw} kW at {when}, {amount}", { label: d.label, kw: fmt(d.peak_kw, 1), when: when(d.at), amount: money(d.charge, cur) })
          + (d.estimated ? " " + t("(estimated from readings longer than the demand window)") : ""));
      }
      if (c && c.fixed_charges) notes.push(t("fixed charges {amount}", { amount: money(c.fixed_charges, cur) }));
      if (c && c.missing_intervals) notes.push(t("{count} intervals not read (shown as gaps, never estimated)", { count: count(c.missing_intervals) }));
      // A daily or monthly reading is priced as if used evenly over its hours: say so.
      if (c && c.estimated) notes.push(t("estimated: {kwh} read as daily or monthly totals, spread evenly over their hours", { kwh: kwh(c.estimated_kwh) }));
      $("cost-notes").textContent = notes.length ? notes.join(" · ") : "\u00a0";
    } catch (e) {
      $("cost-notes").textContent = t("Cost not available: {reason}", { reason: e.message });
      for (const id of ["cost-interval-kwh", "cost-today-kwh", "cost-cycle-kwh", "cost-next-tier"]) {
        if ($(id).classList.contains("loading")) $(id).textContent = "\u00a0";
      }
      for (const box of [$("tier-chart"), $("period-chart")]) if (box.querySelector(".loading")) box.replaceChildren();
    }
    // Filled (or said why not): the placeholders go.
    for (const n of document.querySelectorAll("#cost-tiles .loading")) n.classList.remove("loading");
    $("cost-tiles").classList.remove("loading");
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

  // The rate sheet, asked again when its price now says it changes ("until", on the appliance's clock)
  // and at the latest every 15 minutes: a dashboard left open shows the on-peak price from 16:00.
  let rateTimer = null;
  async function refreshRate() {
    clearTimeout(rateTimer);
    rateTimer = setTimeout(refreshRate, 30 * 1000);  // replaced below once the sheet answers
    try {
      const r = await fetchJson("/api/v1/tariff");
      state.rate = r; state.rateAsked = true; renderPrice();
      $("rate-summary").classList.remove("loading");
      const until = r.now && Date.parse(r.now.until);
      const wait = until ? Math.min(15 * 60 * 1000, Math.max(1000, until - (Date.now() + skewMs) + 1000)) : 15 * 60 * 1000;
      clearTimeout(rateTimer); rateTimer = setTimeout(refreshRate, wait);
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
          const text = periods.map((p) => `${label(PERIODS, p.period)} ${hours(p.start, p.end)} ${money(p.price_per_kwh, r.currency)}`).join(" · ");
          list.append(el("li", "", `${where}: ${text}`));
        }
      }
      const demand = r.demand_charges;
      for (const c of (demand && demand.charges) || []) {
        list.append(el("li", "", t("{label}: {price} per kW of the cycle's highest {minutes}-minute demand", {
          label: c.label, price: money(c.price_per_kw, r.currency), minutes: demand.window_minutes })));
      }
    } catch (e) {
      $("rate-summary").textContent = t("Rate not available: {reason}", { reason: e.message });
      $("rate-summary").classList.remove("loading");
      if (!state.rateAsked) { state.rateAsked = true; renderPrice(); }  // the meter's price, then
    }
  }

  async function compare() {
    const button = $("whatif-button"); const out = $("whatif");
    button.disabled = true; out.textContent = t("Comparing…");
    try {
      const w = await fetchJson("/api/v1/cost/whatif");
      out.replaceChildren();
      const list = el("ul", "list compact");
      for (const b of w.bills) {
        list.append(el("li", "", b.estimated ? t("{plan}: {amount} (estimated)", { plan: b.plan, amount: money(b.total_cost, b.currency) })
          : `${b.plan}: ${money(b.total_cost, b.currency)}`));
      }
      const days = Math.round(w.intervals_read ? (Date.parse(w.end) - Date.parse(w.start)) / 864e5 : 0);
      const note = !w.cheapest ? t("Not enough history to compare.")
        : w.savings_vs_active ? t("Cheapest: {plan}, {amount} less than your plan ({active})", {
          plan: w.cheapest, amount: money(w.savings_vs_active, w.bills[0].currency), active: w.active_plan })
          : t("Cheapest: {plan} (your plan)", { plan: w.cheapest });
      out.append(el("p", "", note), list);
      if (w.bills.some((b) => b.estimated)) {
        out.append(el("p", "sub", t("Estimated: part of the year was read as daily or monthly totals, priced as if used evenly over their hours.")));
      }
      out.append(el("p", "sub", t("Based on {read} intervals read between {start} and {end}; {missing} missing (import Green Button history with \"ems import\" for a full year).", {
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

  // Each range's last answer is kept: switching back shows it at once (then asks again quietly);
  // a range not seen yet shows the old chart dimmed with "Loading…" until its answer comes.
  const usageSeen = {};
  function showUsage(u) {
    usage.data = u; drawUsage(u);
    chartBox.dataset.range = u.range; chartBox.classList.remove("loading"); chartBox.removeAttribute("aria-busy");
    const bits = [t("{count} intervals read", { count: count(u.intervals_read) })];
    if (u.empty_buckets) bits.push(t("{empty} of {all} periods not read (gaps, never estimated)", { empty: count(u.empty_buckets), all: count(u.t.length) }));
    const spread = (u.estimated || []).filter(Boolean).length;
    if (spread) bits.push(t("{count} periods estimated from daily or monthly totals, spread evenly", { count: count(spread) }));
    if (!u.plan) bits.push(t("no rate plan, so no price"));
    $("usage-status").textContent = bits.join(" · ");
  }

  async function refreshUsage() {
    const seq = ++usage.seq;
    const range = usage.range;
    if (usageSeen[range]) { if (chartBox.dataset.range !== range) showUsage(usageSeen[range]); }
    else { chartBox.classList.add("loading"); chartBox.setAttribute("aria-busy", "true"); $("usage-status").textContent = t("Loading…"); }
    try {
      const u = await fetchJson("/api/v1/usage?range=" + range);
      usageSeen[range] = u;
      if (seq !== usage.seq) return;  // a newer range was asked for meanwhile
      showUsage(u);
    } catch (e) {
      if (seq !== usage.seq) return;
      chartBox.classList.remove("loading"); chartBox.removeAttribute("aria-busy");
      $("usage-status").textContent = t("Usage not available: {reason}", { reason: e.message });
    }
  }

  for (const b of document.querySelectorAll(".range[data-range]")) {
    b.addEventListener("click", () => {
      if (usage.range === b.dataset.range) return;
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
      if (msg.at) skewMs = Date.parse(msg.at) - Date.now();  // the appliance's clock, for the time left
      Object.assign(state, msg.data);
      renderMeter(); renderPrice(); renderEvents(); renderMessages(); renderHealth();
      // The first snapshot finds the costs, the chart and the rate already asked for (at load, in
      // parallel with the socket); a later one (each minute, a reconnect) asks again.
      if (firstSnapshot) firstSnapshot = false; else { scheduleCost(); refreshRate(); }
      if (reconnected) { reconnected = false; clearFailures(); }
    } else if (msg.topic === "meter") {
      upsertMeter(msg.data); renderMeter();
      const start = msg.data.last_interval && msg.data.last_interval.start;
      if (start && start !== lastIntervalStart) { lastIntervalStart = start; scheduleCost(); }
    }
    else if (msg.topic === "prices") { state.prices = msg.data; renderPrice(); }
    else if (msg.topic === "messages") { state.messages = msg.data; renderMessages(); }
    else if (msg.topic === "events") { state.events = msg.data; renderEvents(); }
    else if (msg.topic === "health") { state.health = msg.data; renderHealth(); }
    document.dispatchEvent(new CustomEvent("ems:update", { detail: msg }));
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws?lang=${encodeURIComponent(LOCALE || "")}`);
    socket = ws;
    ws.onopen = () => { retryMs = 500; };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = () => {
      reconnected = true;
      const link = $("link"); link.textContent = t("Appliance unreachable – reconnecting"); link.className = "pill pill-bad";
      document.body.classList.add("stale");
      setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 10000);
    };
  }
  // The panels that need a query are asked for at once, beside the socket: the page is complete
  // when the slowest answers, not a snapshot and a debounce later.
  let firstSnapshot = true;
  let reconnected = false;  // the socket closed: the next snapshot is the link coming back
  refreshCost(); refreshUsage(); refreshRate();
  // Once a minute, ask for a fresh snapshot so "active"/"expired" marks follow the clock.
  setInterval(() => { if (socket && socket.readyState === WebSocket.OPEN) socket.send("snapshot"); }, 60000);
  connect();
})();
