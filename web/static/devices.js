// Refreshes the Devices page's table every few seconds (the server renders it in the reader's language).
"use strict";
(function () {
  const REFRESH_MS = 5000;
  async function refresh() {
    if (document.hidden || document.activeElement && document.activeElement.closest("#devices-table form")) {
      return; // do not pull a button from under the keyboard
    }
    try {
      const response = await fetch("/devices?part=table", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const html = await response.text();
      const holder = document.getElementById("devices-table");
      if (holder) holder.outerHTML = html;
    } catch (err) {
      // offline for a moment: the next refresh tries again
    }
  }
  setInterval(refresh, REFRESH_MS);
})();
