/* Model Atlas theme: light or dark, from the reader's choice (kept in localStorage) or else the
 * system setting. Loaded in <head> so the page never flashes the wrong theme; wires the header's
 * toggle button and announces changes with a `atlas:themechange` event on document (atlas.js
 * re-embeds the charts with the matching Vega theme). */
(function () {
  "use strict";

  var KEY = "modelatlas-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (e) {
      return null;  /* storage disabled (some file:// setups): follow the system */
    }
  }

  function store(value) {
    try { window.localStorage.setItem(KEY, value); } catch (e) { /* not persisted */ }
  }

  /* The effective theme: "dark" or "light". */
  function current() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return media && media.matches ? "dark" : "light";
  }

  function announce() {
    var button = document.getElementById("theme-toggle");
    if (button) {
      var dark = current() === "dark";
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.textContent = dark ? "Light theme" : "Dark theme";
      button.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
    }
    var event;
    try {
      event = new CustomEvent("atlas:themechange", { detail: { theme: current() } });
    } catch (e) {
      event = document.createEvent("CustomEvent");
      event.initCustomEvent("atlas:themechange", false, false, { theme: current() });
    }
    document.dispatchEvent(event);
  }

  function set(theme) {
    root.setAttribute("data-theme", theme);
    store(theme);
    announce();
  }

  var initial = stored();
  if (initial) root.setAttribute("data-theme", initial);

  window.AtlasTheme = { current: current, set: set };

  function wire() {
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () { set(current() === "dark" ? "light" : "dark"); });
    }
    announce();
    if (media && media.addEventListener) {
      media.addEventListener("change", function () { if (!stored()) announce(); });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
