// berth console: the only script (CSP forbids inline script). Small and dependency-free.
"use strict";
(function () {
  // Buttons with data-confirm ask first (e.g. stopping a task, rolling back).
  document.addEventListener("click", function (ev) {
    var el = ev.target instanceof Element ? ev.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
  // A form submitted once shows it is working and is not submitted twice.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.submitting === "1") { ev.preventDefault(); return; }
    form.dataset.submitting = "1";
    form.setAttribute("aria-busy", "true");
    window.setTimeout(function () { delete form.dataset.submitting; form.removeAttribute("aria-busy"); }, 10000);
  });
  // Hooks other page scripts register: berth.onLoad(fn) runs fn once the DOM is ready.
  var berth = (window.berth = window.berth || {});
  berth.onLoad = function (fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  };
  // berth.poll(url, everyMs, fn): fetches JSON (same origin, with the session cookie) and hands it to fn,
  // bounded backoff on errors; stops when the page is hidden and resumes when shown.
  berth.poll = function (url, everyMs, fn) {
    var delay = everyMs, timer = null;
    function tick() {
      timer = null;
      if (document.hidden) return;
      fetch(typeof url === "function" ? url() : url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) { delay = everyMs; fn(data); })
        .catch(function () { delay = Math.min(delay * 2, 30000); })
        .then(function () { if (timer === null) timer = window.setTimeout(tick, delay); });
    }
    document.addEventListener("visibilitychange", function () { if (!document.hidden && timer === null) tick(); });
    timer = window.setTimeout(tick, delay);
  };
})();
