// In-Home Display: one WebSocket, a snapshot on connect, then a message per change (as on the dashboard).
// Reconnects by itself with backoff; dims the figures and says since when the data is not current
// (meter link not online, no message for 30 s, or the socket closed); says so when the link is revoked.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const tz = body.dataset.timezone || undefined;
  // What the customer switched off of the utility's program (Settings): left out here too.
  const HIDE = new Set((body.dataset.hide || "").split(" ").filter(Boolean));
  // The display's language (the site's, or ?lang=): its strings come in a JSON block from the server.
  const I18N = (() => { try { return JSON.parse($("i18n").textContent); } catch (e) { return {}; } })();
  const LOCALE = I18N.locale || document.documentElement.lang || undefined;
  const t = (msgid, values) => {
    const text = (I18N.strings && I18N.strings[msgid]) || msgid;
    return values ? text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)) : text;
  };
  const STALE_AFTER_MS = 30000;
  const PING_EVERY_MS = 10000; // ask for a snapshot: an unchanged meter sends nothing by itself
  const COST_EVERY_MS = 60000;
  const state = { meters: [], prices: [], messages: [], events: [], health: null, rate: null, rateAsked: false, cycleTier: null };
  const PERIODS = { "off-peak": t("off-peak"), "on-peak": t("on-peak"), "mid-peak": t("mid-peak"),
    "super-off-peak": t("super off-peak") };
  let socket = null;
  let retryMs = 500;
  let lastMessageAt = 0;
  let currentSince = null; // when the data was last current
  let revoked = false;
  let lastIntervalStart = null;

  const dateFormat = (options) => {
    try { return new Intl.DateTimeFormat(LOCALE, { timeZone: tz, ...options }); }
    catch (e) { return new Intl.DateTimeFormat(LOCALE, options); }
  };
  const hhmm = dateFormat({ hour: "numeric", minute: "2-digit" });
  const hhmmss = dateFormat({ hour: "numeric", minute: "2-digit", second: "2-digit" });
  const dayOf = dateFormat({ weekday: "short", day: "numeric", month: "short" });
  const clockDay = dateFormat({ weekday: "long", day: "numeric", month: "long" });
  const num = (v, digits) => Number(v).toLocaleString(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const money = (v, currency, digits, maxDigits = digits) => {
    // Rounded first: a cost of −0.001 is "$0.00", never "−$0.00".
    const scale = 10 ** maxDigits; v = Math.round(v * scale) / scale; if (v === 0) v = 0;
    try { return new Intl.NumberFormat(LOCALE, { style: "currency", currency: currency || "USD", minimumFractionDigits: digits, maximumFractionDigits: maxDigits }).format(v); }
    catch (e) { return num(v, maxDigits) + " " + (currency || ""); }
  };
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls; if (text !== undefined) n.textContent = text; return n; };
  // The appliance's clock (each snapshot says its time): the same as this screen's, except in a demo
  // or a test on simulated time, where the clock, "today" and night dimming follow the appliance.
  let skewMs = 0;
  const applianceNow = () => new Date(Date.now() + skewMs);
  const at = (iso) => {
    const d = new Date(iso);
    return dayOf.format(d) === dayOf.format(applianceNow()) ? hhmm.format(d) : `${dayOf.format(d)} ${hhmm.format(d)}`;
  };

  function renderMeter() {
    const m = state.meters[0];
    if (!m || m.demand_kw === null || m.demand_kw === undefined) return;
    $("demand").textContent = num(Math.abs(m.demand_kw), 2);
    $("demand-sub").textContent = m.demand_kw < 0 ? t("sending to the grid") : t("from the grid");
  }

  // One price truth, as on the dashboard: with a rate plan, its price now (the period's price plus the
  // adder of the cycle's tier), what the costs use; the meter's own price, when it differs, named
  // beside it. Without a plan (or when the meter's prices replace the plan's), the meter's price.
  function renderPrice() {
    const p = state.prices[0] && state.prices[0].current;
    const r = state.rate;
    body.classList.remove("tier-1", "tier-2", "tier-3");
    // Until the rate sheet has answered, no price: the meter's would flash and then be replaced.
    if (!state.rateAsked) { $("price").textContent = "–"; $("price-sub").textContent = "\u00a0"; $("tier").textContent = "\u00a0"; return; }
    if (r && r.plan && r.now && !r.uses_meter_prices) {
      const n = r.now;
      const adders = n.tier_prices_per_kwh || [];
      const tier = adders.length > 1 && state.cycleTier ? Math.min(state.cycleTier, adders.length) : null;
      const price = n.price_per_kwh + (adders.length ? adders[(tier || 1) - 1] : 0);
      $("price").textContent = money(price, r.currency, 2, 3);
      const bits = [];
      if (n.period) bits.push(PERIODS[n.period] || n.period);
      // Read from across a room: the period and, when the meter announces another price, that price;
      // the cycle's tier only when there is room for it (no second price).
      const other = p && Math.abs(p.price_per_kwh - price) >= 0.005;
      if (tier && !other && !HIDE.has("current_tier")) bits.push(t("Tier {tier} of {tiers}", { tier, tiers: adders.length }));
      if (other) bits.push(t("meter: {price}", { price: money(p.price_per_kwh, p.currency, 2, 3) }));
      $("price-sub").textContent = bits.join(" · ") || r.label || "\u00a0";
      const level = n.critical_peak || n.period === "on-peak" ? 3 : n.period === "mid-peak" ? 2 : n.period ? 1 : 0;
      if (level) body.classList.add("tier-" + level);
      $("tier").textContent = !level ? "\u00a0" : level === 1 ? t("Low price") : level === 2 ? t("Medium price") : t("High price");
      return;
    }
    if (!p) { $("price").textContent = "–"; $("price-sub").textContent = t("no price published"); $("tier").textContent = "\u00a0"; return; }
    $("price").textContent = money(p.price_per_kwh, p.currency, 2, 3);
    // "of" only when the tier is one of those counted: never "Tier 4 of 3".
    const tier = !p.tier || HIDE.has("current_tier") ? "" : p.number_of_tiers >= p.tier ? t("Tier {tier} of {tiers}", { tier: p.tier, tiers: p.number_of_tiers })
      : t("Tier {tier}", { tier: p.tier });
    $("price-sub").textContent = [tier, p.rate_label].filter(Boolean).join(" · ") || "\u00a0";
    if (p.tier) body.classList.add("tier-" + Math.min(p.tier, 3));
    $("tier").textContent = !p.tier ? "\u00a0" : p.tier === 1 ? t("Low price") : p.tier === 2 ? t("Medium price") : t("High price");
  }

  // The event banner stays one node while it shows the same event (the IHD asks for a snapshot
  // every 10 s): its button keeps the focus and a press in flight, its saving figure is announced
  // only when it changes.
  let eventBanner = null; // { key, node, text, saving, button, note }
  const canOverride = body.dataset.canOverride === "1";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  // The saving is asked for every 30 s, and every 5 s while none is measured yet (an event's first
  // slot), so it shows as soon as the load change has one.
  const SAVING_EVERY_MS = 30000;
  const SAVING_UNTIL_MEASURED_MS = 5000;
  const saving = { key: null, at: 0, kw: null, seq: 0 };
  const eventKey = (e) => `${e.meter_id}:${e.issuer_event_id}`;
  const eventBase = (e) => `/api/v1/events/${encodeURIComponent(e.meter_id)}/${e.issuer_event_id}/`;

  function eventBannerFor(e) {
    const key = eventKey(e);
    if (eventBanner && eventBanner.key === key) return eventBanner;
    const node = el("div", "ihd-banner banner-event");
    const text = el("p", "ihd-banner-text");
    const amount = el("p", "ihd-saving");
    amount.setAttribute("aria-live", "polite"); amount.hidden = true;
    node.append(text, amount);
    let button = null;
    if (canOverride) {
      button = el("button", "ihd-act");
      button.type = "button";
      button.addEventListener("click", () => optOut(button));
      node.append(button);
    }
    eventBanner = { key, node, text, amount, button, note: "" };
    return eventBanner;
  }

  function renderEventBanner(e) {
    const b = eventBannerFor(e);
    b.event = e;
    b.node.className = "ihd-banner banner-event banner-" + e.status + (e.participation === "opted_out" ? " banner-opted-out" : "");
    b.node.dataset.eventId = e.issuer_event_id;
    b.text.replaceChildren(el("strong", "", e.status === "active" ? t("Energy event now") : t("Energy event announced")));
    b.text.append(document.createTextNode(" – " + (e.participation === "opted_out" ? t("you opted out")
      : e.status === "active" ? t("please use less until {end}", { end: at(e.end) })
        : t("please use less from {start} to {end}", { start: at(e.start), end: hhmm.format(new Date(e.end)) }))));
    b.text.append(el("span", "ihd-banner-meta", " · " + (b.note || t("event {id}", { id: e.issuer_event_id }))));
    const shown = e.status === "active" && e.participation !== "opted_out" && saving.key === b.key && saving.kw !== null;
    // Against the home's usual use at these hours (its baseline); more than usual is said plainly, not as a saving.
    const words = !shown ? "" : saving.kw <= -0.005 ? t("{kw} kW more than usual", { kw: num(-saving.kw, 2) })
      : t("Saving now: {kw} kW", { kw: num(Math.max(0, saving.kw), 2) });
    b.amount.classList.toggle("ihd-saving-more", shown && saving.kw <= -0.005);
    if (b.amount.textContent !== words) b.amount.textContent = words;
    b.amount.hidden = !shown;
    if (b.button) {
      const out = e.participation === "opted_out";
      const action = out ? "opt-in" : "opt-out";
      if (b.button.dataset.action !== action) {
        b.button.dataset.action = action;
        b.button.textContent = out ? t("Opt back in") : t("Opt out");
        b.button.setAttribute("aria-label", out ? t("Take part in event {id} again", { id: e.issuer_event_id })
          : t("Opt out of event {id}", { id: e.issuer_event_id }));
      }
    }
    return b.node;
  }

  async function optOut(button) {
    const b = eventBanner;
    if (!b || !b.event) return;
    const e = b.event;
    const action = button.dataset.action;
    button.disabled = true;
    try {
      const r = await fetch(eventBase(e) + action, { method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf } });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(data.error || String(r.status));
      const i = state.events.findIndex((x) => eventKey(x) === eventKey(data));
      if (i >= 0) state.events[i] = data;
      b.note = action === "opt-out" ? t("the utility is told") : t("you take part again");
    } catch (err) {
      b.note = t("not done: {reason}", { reason: err.message });
    }
    button.disabled = false;
    renderBanners();
  }

  // The saving of the event running, from its measured load change (nothing while there is no baseline).
  async function refreshSaving(e) {
    const key = eventKey(e);
    const seq = ++saving.seq;
    saving.at = Date.now();
    if (saving.key !== key) { saving.key = key; saving.kw = null; }
    try {
      const r = await fetch(eventBase(e) + "load-change", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (r.status === 401) { await checkAccess(); return; }
      if (!r.ok) throw new Error(String(r.status));
      const c = await r.json();
      if (seq !== saving.seq) return;
      saving.kw = c.status === "live" || c.status === "final" ? savingNow(c) : null;
    } catch (err) {
      if (seq === saving.seq) saving.kw = null;
    }
    renderBanners();
  }

  // The reduction in the last slot measured, else the average so far.
  function savingNow(c) {
    const slots = c.intervals || [];
    for (let i = slots.length - 1; i >= 0; i--) {
      const s = slots[i];
      if (s.part === "event" && s.baseline_kw !== null && s.actual_kw !== null) return s.baseline_kw - s.actual_kw;
    }
    return c.kw_reduced === undefined ? null : c.kw_reduced;
  }

  // What cannot work now, short enough for the wall (health's problems, by their code).
  const PROBLEMS = {
    disk_full: t("Readings are not being saved: the data disk is full."),
    unwritable: t("Readings are not being saved: the database cannot be written."),
  };

  function renderProblems() {
    const problems = (state.health && state.health.problems) || [];
    const text = problems.map((p) => PROBLEMS[p.problem] || PROBLEMS.unwritable).join(" ");
    if ($("problems").textContent !== text) $("problems").textContent = text;
    $("problems-box").hidden = !text;
  }

  function renderBanners() {
    const box = $("banners");
    const events = HIDE.has("dr_events") ? [] : state.events.filter((e) => e.status === "active" || e.status === "scheduled")
      .sort((a, b) => (a.status === "active" ? -1 : 0) - (b.status === "active" ? -1 : 0));
    const shown = [];
    for (const e of events.slice(0, 1)) {
      shown.push(renderEventBanner(e));
      if (e.status === "active" && (saving.key !== eventKey(e) || Date.now() - saving.at >= (saving.kw === null ? SAVING_UNTIL_MEASURED_MS : SAVING_EVERY_MS))) refreshSaving(e);
    }
    if (!events.length) eventBanner = null;
    const urgent = state.messages.filter((m) => (m.importance === "high" || m.importance === "critical") && !m.cancelled_at && m.active);
    for (const m of urgent.slice(0, 1)) {
      const b = el("p", "ihd-banner banner-message banner-" + m.importance);
      // A public broadcast (a grid or weather alert for everyone) is named so: not the utility
      // writing to this home.
      const kind = m.origin === "public" ? (m.importance === "critical" ? t("Urgent public alert") : t("Public alert"))
        : m.importance === "critical" ? t("Urgent") : t("Message");
      b.append(el("strong", "", kind), document.createTextNode(" – " + (m.display_text || m.text)));
      shown.push(b);
    }
    // Keep the event banner's node (and the focus on its button) when nothing else moved.
    const same = shown.length === box.children.length && shown.every((n, i) => n === box.children[i]);
    if (!same) {
      for (const n of [...box.children]) if (!shown.includes(n)) n.remove();
      shown.forEach((n, i) => { if (box.children[i] !== n) box.insertBefore(n, box.children[i] || null); });
    }
  }

  // The rate sheet's price now, asked again when it says it changes (its "until", on the appliance's
  // clock) and at the latest every 15 minutes, so a display left on shows the on-peak price from 16:00.
  let rateTimer = null;
  async function refreshRate() {
    clearTimeout(rateTimer);
    let wait = 15 * 60 * 1000;
    try {
      const rate = await fetch("/api/v1/tariff", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (rate.ok) state.rate = await rate.json();
      const until = state.rate && state.rate.now && Date.parse(state.rate.now.until);
      if (until) wait = Math.min(wait, Math.max(1000, until - applianceNow().getTime() + 1000));
    } catch (err) { wait = 30 * 1000; /* keep the last rate, ask again soon */ }
    state.rateAsked = true;
    renderPrice(); fitAll();  // the price's text changed: shrink it now, not at the next tick
    rateTimer = setTimeout(refreshRate, wait);
  }

  async function refreshCost() {
    try {
      const r = await fetch("/api/v1/cost?period=today", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (r.status === 401) { await checkAccess(); return; }
      if (!r.ok) throw new Error(String(r.status));
      const report = await r.json();
      const c = report.cost;
      if (c) state.cycleTier = c.current_tier;
      renderPrice();
      $("cost-today").textContent = c ? money(c.total_cost, c.currency, 2) : "–";
      $("cost-today-sub").textContent = c ? t("{kwh} kWh used", { kwh: num(c.energy_kwh, 1) }) : t("nothing read yet today");
      fitAll();  // new figures: shrunk to fit now, not at the next tick
    } catch (e) {
      $("cost-today-sub").textContent = t("cost not available");
    }
  }

  // The socket closed or a fetch was refused: is the display link still valid?
  async function checkAccess() {
    let r;
    try { r = await fetch("/api/v1/price", { headers: { Accept: "application/json" }, credentials: "same-origin" }); }
    catch (e) { return true; } // the appliance is unreachable: keep trying
    if (r.status !== 401) return true;
    if (body.dataset.kiosk !== "1") { location.href = "/login?next=%2Fihd"; return false; }
    revoked = true;
    $("revoked").hidden = false;
    body.classList.add("revoked");
    if (socket) socket.close();
    return false;
  }

  function upsertMeter(m) {
    const i = state.meters.findIndex((x) => x.meter_id === m.meter_id);
    if (i >= 0) state.meters[i] = m; else state.meters.push(m);
  }

  function onMessage(msg) {
    lastMessageAt = Date.now();
    if (msg.topic === "snapshot") {
      if (msg.at) skewMs = Date.parse(msg.at) - Date.now();
      const first = !state.meters.length && !state.prices.length;
      Object.assign(state, msg.data);
      renderMeter(); renderPrice(); renderBanners(); renderProblems();
      if (first) { refreshRate(); refreshCost(); }
    } else if (msg.topic === "meter") {
      upsertMeter(msg.data); renderMeter();
      const start = msg.data.last_interval && msg.data.last_interval.start;
      if (start && start !== lastIntervalStart) { if (lastIntervalStart) refreshCost(); lastIntervalStart = start; }
    } else if (msg.topic === "prices") { state.prices = msg.data; renderPrice(); }
    else if (msg.topic === "messages") { state.messages = msg.data; renderBanners(); }
    else if (msg.topic === "events") { state.events = msg.data; renderBanners(); }
    else if (msg.topic === "health") { state.health = msg.data; renderProblems(); }
    tick();
  }

  // Night dimming, when the display link asks for it (dim=22:00-07:00): the screen darkens from the
  // first time to the second in the site's time zone, and an event or a problem still shows.
  const NIGHT = (/^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(new URLSearchParams(location.search).get("dim") || "") || []).slice(1).map(Number);
  const minuteOfDay = dateFormat({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function night(now) {
    if (NIGHT.length !== 4) return false;
    const [h, m] = minuteOfDay.format(now).split(":").map(Number);
    const at = h * 60 + m, from = NIGHT[0] * 60 + NIGHT[1], to = NIGHT[2] * 60 + NIGHT[3];
    return from <= to ? at >= from && at < to : at >= from || at < to;
  }

  // Text scales to fit: a figure's one line narrows its type until it fits its column (a longer
  // currency such as "0,29 US$" in Spanish), a banner's two lines until the end time shows whole.
  // The style's size is the largest; a node is never made smaller than half of it.
  const ONE_LINE = ".ihd-num, .ihd-sub, .ihd-tier, .ihd-foot p";  // measured across
  const TWO_LINES = ".ihd-banner-text, .banner-message";  // clamped to two lines: measured down
  function fit(node, across) {
    node.style.fontSize = "";
    const base = parseFloat(getComputedStyle(node).fontSize);
    let size = base;
    for (let i = 0; i < 12 && size > base / 2; i += 1) {
      const over = across ? node.scrollWidth / Math.max(node.clientWidth, 1) : node.scrollHeight / Math.max(node.clientHeight, 1);
      if ((across ? node.scrollWidth - node.clientWidth : node.scrollHeight - node.clientHeight) <= 1) break;
      size = Math.max(base / 2, Math.floor(size * Math.min(0.96, across ? 1 / over : 1 / Math.sqrt(over))));
      node.style.fontSize = size + "px";
    }
  }
  function fitAll() {
    document.querySelectorAll(ONE_LINE).forEach((n) => fit(n, true));
    document.querySelectorAll(TWO_LINES).forEach((n) => fit(n, false));
  }
  window.addEventListener("resize", fitAll);

  // Once a second: the clock, and whether the figures are still current.
  function tick() {
    const now = applianceNow();
    body.classList.toggle("night", night(now));
    fitAll();
    $("clock").textContent = hhmm.format(now);
    $("clock").setAttribute("title", clockDay.format(now));
    const m = state.meters[0];
    let why = null;
    const LINKS = { connecting: t("meter connecting"), stale: t("meter stale"), offline: t("meter offline") };
    if (!socket || socket.readyState !== WebSocket.OPEN) why = t("reconnecting");
    else if (!m) why = t("waiting for the meter");
    else if (m.link !== "online") why = LINKS[m.link] || m.link;
    else if (Date.now() - lastMessageAt > STALE_AFTER_MS) why = t("no update");
    if (!why) { currentSince = now; $("updated").textContent = hhmmss.format(now); }
    body.classList.toggle("stale", why !== null);
    $("stale").textContent = !why ? "\u00a0"
      : currentSince ? t("Data not current since {time} – {why}", { time: hhmm.format(currentSince), why })
        : t("Waiting for data – {why}", { why });
  }

  function connect() {
    if (revoked) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws?lang=${encodeURIComponent(LOCALE || "")}`);
    socket = ws;
    ws.onopen = () => { retryMs = 500; };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = async () => {
      if (socket !== ws) return;
      tick();
      if (!(await checkAccess())) return;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  setInterval(tick, 1000);
  setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastMessageAt > STALE_AFTER_MS + PING_EVERY_MS) { socket.close(); return; } // a silent, dead link
    socket.send("snapshot");
  }, PING_EVERY_MS);
  setInterval(() => { if (socket && socket.readyState === WebSocket.OPEN) refreshCost(); }, COST_EVERY_MS);
  if (!body.dataset.revoked) { tick(); connect(); }
})();
