/* Model Atlas page runtime: mounts every chart with vega-embed; page scripts hook in first.
 * Chart specs and data live in <script type="application/json"> blocks; nothing is fetched.
 *
 * A page script calls Atlas.register(function (specs) {...}) to adjust specs (keyed by the
 * chart element's id) before mounting; after mounting, Atlas.views[id] is the Vega view.
 * Atlas.onMount(id, fn) calls fn(view) each time chart `id` is mounted; Atlas.remount(id, spec)
 * replaces a chart with a new spec (e.g. a different encoding). */
(function () {
  "use strict";

  var setups = [];
  var mountHooks = {};
  var Atlas = {
    views: {},
    register: function (setup) { setups.push(setup); },
    readJson: function (id) {
      var node = document.getElementById(id);
      return node ? JSON.parse(node.textContent) : null;
    },
    onMount: function (id, hook) { (mountHooks[id] = mountHooks[id] || []).push(hook); },
    remount: function (id, spec) {
      var element = document.getElementById(id);
      if (Atlas.views[id]) Atlas.views[id].finalize();
      return embed(element, spec);
    },
    dark: function () {
      return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    },
  };
  window.Atlas = Atlas;
  window.__atlasViews = Atlas.views;
  window.__atlasReady = false;

  function embed(element, spec) {
    /* ast + interpreter: Vega evaluates expressions without eval, so the CSP needs no
     * 'unsafe-eval'; default styles off: their CSS ships in atlas.css, no inline <style>. */
    var options = {
      actions: false, renderer: "svg", theme: Atlas.dark() ? "dark" : undefined, ast: true,
      defaultStyle: false, tooltip: { disableDefaultStyle: true, theme: Atlas.dark() ? "dark" : "light" },
    };
    return window.vegaEmbed(element, spec, options).then(function (result) {
      Atlas.views[element.id] = result.view;
      (mountHooks[element.id] || []).forEach(function (hook) { hook(result.view); });
      return result.view;
    });
  }

  function start() {
    var elements = Array.prototype.slice.call(document.querySelectorAll(".vega-embed[data-spec]"));
    var specs = {};
    elements.forEach(function (element) {
      specs[element.id] = Atlas.readJson(element.getAttribute("data-spec"));
    });
    setups.forEach(function (setup) { setup(specs); });
    Promise.all(elements.map(function (element) { return embed(element, specs[element.id]); }))
      .then(function () { window.__atlasReady = true; }, function (error) {
        console.error("Model Atlas: a chart failed to render:", error);
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else window.setTimeout(start, 0);
})();
