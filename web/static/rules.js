// The rules editor: a gutter of line numbers kept in step with the text (as it is typed and
// scrolled), the problem lines marked in it, and a problem's "Line N" link putting the caret there.
"use strict";
(function () {
  const area = document.getElementById("rules-text");
  const gutter = document.getElementById("rules-gutter");
  if (!area) return;
  const marked = new Set(Array.from(document.querySelectorAll("a[data-line]"), (a) => Number(a.dataset.line)));
  let shown = -1;

  function number() {
    const count = area.value.split("\n").length;
    if (gutter && count !== shown) {
      shown = count;
      gutter.textContent = "";
      const lines = [];
      for (let i = 1; i <= count; i += 1) {
        const span = document.createElement("span");
        span.textContent = String(i);
        if (marked.has(i)) span.className = "bad";
        lines.push(span, document.createTextNode("\n"));
      }
      gutter.append(...lines);
    }
    follow();
  }
  function follow() {
    if (gutter) gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener("input", number);
  area.addEventListener("scroll", follow);
  number();

  document.querySelectorAll("a[data-line]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      const line = Number(link.dataset.line);
      const lines = area.value.split("\n");
      let offset = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i += 1) offset += lines[i].length + 1;
      area.focus();
      area.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
      const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || area.scrollHeight / Math.max(lines.length, 1);
      area.scrollTop = Math.max(0, (line - 3) * lineHeight);
      follow();
    });
  });
})();
