// A problem's "Line N" link puts the caret on that line of the rules text.
"use strict";
(function () {
  const area = document.getElementById("rules-text");
  if (!area) return;
  document.querySelectorAll("a[data-line]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      const line = Number(link.dataset.line);
      const lines = area.value.split("\n");
      let offset = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i += 1) offset += lines[i].length + 1;
      area.focus();
      area.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
      const lineHeight = area.scrollHeight / Math.max(lines.length, 1);
      area.scrollTop = Math.max(0, (line - 3) * lineHeight);
    });
  });
})();
