// MikroBill admin: conveniences only. Every action also works without this script.
document.addEventListener("click", function (e) {
  var t = e.target.closest("[data-print]");
  if (t) { e.preventDefault(); window.print(); }
});
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
// One navigation group open at a time; a click elsewhere closes it.
document.addEventListener("toggle", function (e) {
  var d = e.target;
  if (!d.open || !d.closest || !d.closest(".nav")) { return; }
  document.querySelectorAll(".nav details[open]").forEach(function (o) { if (o !== d) { o.open = false; } });
}, true);
document.addEventListener("click", function (e) {
  if (e.target.closest(".nav")) { return; }
  document.querySelectorAll(".nav details[open]").forEach(function (o) { o.open = false; });
});
