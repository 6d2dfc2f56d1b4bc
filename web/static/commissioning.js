// The Commissioning page's "Print the label" button (shown only where a script runs): the page's print
// style (commissioning.css) prints the label alone.
"use strict";
(function () {
  const button = document.getElementById("print-label");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
