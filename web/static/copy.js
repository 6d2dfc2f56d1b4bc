// A "Copy" button (data-copy="<id of an input>") copies the input's text; on an address without
// HTTPS (the appliance on the LAN) the clipboard API is missing, so the text is selected and copied.
"use strict";
(function () {
  const I18N = (() => { try { return JSON.parse(document.getElementById("i18n-copy").textContent); } catch (e) { return {}; } })();
  const t = (msgid) => (I18N.strings && I18N.strings[msgid]) || msgid;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const label = button.textContent;
    button.addEventListener("click", async function () {
      const input = document.getElementById(button.dataset.copy);
      if (!input) return;
      let done = false;
      try {
        if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(input.value); done = true; }
      } catch (e) { /* fall back below */ }
      if (!done) { input.focus(); input.select(); try { done = document.execCommand("copy"); } catch (e) { done = false; } }
      button.textContent = done ? t("Copied") : t("Select the text and copy it");
      setTimeout(function () { button.textContent = label; }, 2500);
    });
  });
})();
