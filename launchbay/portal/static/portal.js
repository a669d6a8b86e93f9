// Live countdowns (amber under 30 minutes, red once expired) and the light/dark switch.
(function () {
  "use strict";
  function two(seconds) {
    var units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]], out = "", used = 0;
    for (var i = 0; i < units.length && used < 2; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n > 0 || (used > 0)) { if (n > 0) { out += n + units[i][0]; } used++; seconds -= n * units[i][1]; }
    }
    return out || "0s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.expires) - now) / 1000);
      el.textContent = left > 0 ? "in " + two(left) : "expired " + two(-left) + " ago";
      el.classList.toggle("late", left <= 0);
      if (left <= 0) { el.classList.remove("soon"); } else if (left < 600) { el.classList.add("soon"); }
    });
  }
  function applyTheme(theme) {
    if (theme) { document.documentElement.dataset.theme = theme; } else { delete document.documentElement.dataset.theme; }
  }
  applyTheme(localStorage.getItem("launchbay-theme"));
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    document.body.addEventListener("htmx:afterSwap", tick);
    // Choosing a template shows its form at once (the CSP allows no inline handlers).
    document.body.addEventListener("change", function (event) {
      if (event.target.matches && event.target.matches("[data-autosubmit]")) { event.target.form.submit(); }
    });
    // A form with data-confirm asks first.
    document.body.addEventListener("submit", function (event) {
      var ask = event.target.dataset && event.target.dataset.confirm;
      if (ask && !window.confirm(ask)) { event.preventDefault(); }
    });
    var toggle = document.querySelector("[data-theme-toggle]");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var dark = document.documentElement.dataset.theme === "dark" ||
          (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
        var next = dark ? "light" : "dark";
        localStorage.setItem("launchbay-theme", next);
        applyTheme(next);
      });
    }
  });
})();
