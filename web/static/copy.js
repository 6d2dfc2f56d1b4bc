// A "Copy" button (data-copy="<id of an input or of an element>") copies its text; on an address without
// HTTPS (the appliance on the LAN) the clipboard API is missing, so the text is selected and copied.
"use strict";
(function () {
  const I18N = (() => { try { return JSON.parse(document.getElementById("i18n-copy").textContent); } catch (e) { return {}; } })();
  const t = (msgid) => (I18N.strings && I18N.strings[msgid]) || msgid;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    const label = button.textContent;
    button.addEventListener("click", async function () {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = "value" in source ? source.value : source.textContent.trim();
      let done = false;
      try {
        if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); done = true; }
      } catch (e) { /* fall back below */ }
      if (!done) {
        if ("select" in source) { source.focus(); source.select(); }
        else { const range = document.createRange(); range.selectNodeContents(source); getSelection().removeAllRanges(); getSelection().addRange(range); }
        try { done = document.execCommand("copy"); } catch (e) { done = false; }
      }
      button.textContent = done ? t("Copied") : t("Select the text and copy it");
      setTimeout(function () { button.textContent = label; }, 2500);
    });
  });
})();
