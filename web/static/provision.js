// The Add devices page: counts joining's countdown down, and on each push of the provisioning
// WebSocket fetches the page's parts again (rendered by the server in the reader's language).
"use strict";
(function () {
  const countdown = document.getElementById("countdown");
  let left = countdown ? Number(countdown.dataset.seconds || 0) : 0;
  const deadline = Date.now() + left * 1000;
  function tick() {
    if (!countdown) return;
    left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const number = document.getElementById("seconds-left");
    if (number) number.textContent = String(left);
    countdown.querySelector(".when-open").hidden = left <= 0;
    countdown.querySelector(".when-closed").hidden = left > 0;
    countdown.classList.toggle("countdown-open", left > 0);
  }
  if (left > 0) setInterval(tick, 1000);

  let pending = null;
  async function refresh(part, id) {
    const holder = document.getElementById(id);
    if (!holder || (document.activeElement && holder.contains(document.activeElement))) return; // not from under the keyboard
    const query = new URLSearchParams(location.search);
    query.set("part", part);
    try {
      const response = await fetch("/devices/add?" + query.toString(), { credentials: "same-origin", cache: "no-store" });
      if (response.ok) holder.outerHTML = await response.text();
    } catch (err) {
      // offline for a moment: the next push tries again
    }
  }
  function soon() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh("log", "log"); refresh("devices", "found"); }, 300);
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(scheme + "//" + location.host + "/api/v1/provision/ws");
    ws.onmessage = soon;
    ws.onclose = (event) => { if (event.code !== 1001) setTimeout(connect, 3000); };
  }
  connect();
})();
