// berth console, service page: live status (status.json every 3 s) and live logs (logs.json every 2 s).
// Text goes in with textContent only; the status fragments are server-rendered (escaped) markup parsed with
// DOMParser.
(function () {
  "use strict";
  var page = document.getElementById("service-page");
  if (!page) return;
  var statusUrl = page.getAttribute("data-status-url");
  var logsUrl = page.getAttribute("data-logs-url");
  var MAX_LINES = 500;

  // The console answers a script's failure as {"error": {"code", "message"}}; a signed-out session as a redirect
  // to the sign-in page (not JSON).
  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(
        function (body) {
          if (!r.ok) {
            var e = (body && body.error) || {};
            throw new Error((e.code ? e.code + ": " : "") + (e.message || "HTTP " + r.status));
          }
          return body;
        },
        function () {
          throw new Error("the session ended or the console is unreachable; reload the page to sign in again");
        }
      );
    });
  }

  // What each live part last showed: an unchanged part is left alone (a click in flight keeps its button).
  var shown = {};

  function replaceFrom(html, target) {
    if (!target || typeof html !== "string") return;
    var key = target.id || "status";
    if (shown[key] === undefined) shown[key] = target.innerHTML;
    if (shown[key] === html) return;
    shown[key] = html;
    var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
    var wrap = doc.body.firstChild;
    var nodes = [];
    while (wrap && wrap.firstChild) nodes.push(document.adoptNode(wrap.removeChild(wrap.firstChild)));
    target.replaceChildren.apply(target, nodes);
  }

  // Status, deployments, tasks.
  var statusBusy = false;
  function pollStatus() {
    if (statusBusy || document.hidden) return;
    statusBusy = true;
    getJson(statusUrl)
      .then(function (s) {
        var status = document.getElementById("status");
        if (status && s.html && s.html.status && s.html.status !== shown.statusOuter) {
          shown.statusOuter = s.html.status;
          var holder = document.createElement("span");
          status.parentNode.replaceChild(holder, status);
          replaceFrom(s.html.status, holder);
          while (holder.firstChild) holder.parentNode.insertBefore(holder.firstChild, holder);
          holder.parentNode.removeChild(holder);
        }
        var active = document.activeElement;
        var busy = function (el) { return el && active && el.contains(active) && active.tagName !== "BODY"; };
        var deployments = document.getElementById("deployments-body");
        if (!busy(deployments)) replaceFrom(s.html && s.html.deployments, deployments);
        var tasks = document.getElementById("tasks-body");
        if (!busy(tasks)) replaceFrom(s.html && s.html.tasks, tasks);
      })
      .catch(function () {})
      .then(function () { statusBusy = false; });
  }
  setInterval(pollStatus, 3000);

  // Logs.
  var list = document.getElementById("log-lines");
  var filter = document.getElementById("log-filter");
  if (!list || !filter) return;
  var after = "";
  var seen = {};
  var generation = 0;
  var logsBusy = false;

  var logError = document.getElementById("log-error");
  function showLogError(message) {
    if (!logError) return;
    logError.textContent = message ? "Logs are not updating: " + message : "";
    logError.hidden = !message;
    if (message) {
      logError.className = "error";
      logError.setAttribute("role", "alert");
    } else {
      logError.className = "";
      logError.removeAttribute("role");
    }
  }

  function fmt(ms) {
    var d = new Date(ms);
    return isNaN(d.getTime()) ? "" : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function pollLogs() {
    if (logsBusy) return;
    logsBusy = true;
    var mine = generation;
    var url = logsUrl + "?filter=" + encodeURIComponent(filter.value) + "&after=" + encodeURIComponent(after);
    getJson(url)
      .then(function (r) {
        if (mine !== generation) return;
        (r.events || []).forEach(function (e) {
          var key = e.id || e.timestamp + "/" + e.stream + "/" + e.message;
          if (seen[key]) return;
          seen[key] = true;
          var li = document.createElement("li");
          li.setAttribute("data-stream", e.stream || "");
          var t = document.createElement("time");
          t.textContent = fmt(e.timestamp);
          var m = document.createElement("span");
          m.className = "message";
          m.textContent = e.message;
          li.appendChild(t);
          li.appendChild(document.createTextNode(" "));
          li.appendChild(m);
          list.appendChild(li);
        });
        while (list.children.length > MAX_LINES) {
          list.removeChild(list.firstElementChild);
        }
        if (r.after !== undefined && r.after !== null) after = String(r.after);
      })
      .then(function () { showLogError(""); })
      .catch(function (err) { if (mine === generation) showLogError(err.message); })
      .then(function () { logsBusy = false; });
  }

  var debounce = null;
  filter.addEventListener("input", function () {
    clearTimeout(debounce);
    debounce = setTimeout(function () {
      generation += 1;
      after = "";
      seen = {};
      list.replaceChildren();
      logsBusy = false;
      pollLogs();
    }, 300);
  });
  pollLogs();
  setInterval(pollLogs, 2000);
})();
