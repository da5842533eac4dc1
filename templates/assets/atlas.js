/* Model Atlas page runtime: mounts every chart with vega-embed; page scripts hook in first.
 * Chart specs and data live in <script type="application/json"> blocks, or in data files
 * loaded on demand as classic scripts (below); nothing is fetched.
 *
 * A page script calls Atlas.register(function (specs) {...}) to adjust specs (keyed by the
 * chart element's id) before mounting; after mounting, Atlas.views[id] is the Vega view. Read
 * Atlas.views[id] each time it is needed: a theme change re-embeds every chart (keeping the data
 * that page scripts swapped in) and replaces the views; `atlas:embedded` fires on document after
 * every (re-)mount.
 *
 * Every chart's <details class="chart-data"> gets a table of its data when opened: the current
 * rows of each named dataset of the view (so data swapped in by page scripts is shown), else the
 * spec's inline values; the first MAX_ROWS rows, with a note.
 *
 * Atlas.onMount(id, fn) calls fn(view) each time chart `id` is mounted (theme re-embeds
 * included); Atlas.remount(id, spec) replaces a chart with a new spec (e.g. a different
 * encoding), which later theme re-embeds keep. Atlas.beforeReady(fn): after the first mount,
 * window.__atlasReady waits for the promise fn returns (e.g. the URL fragment applied);
 * Atlas.embedding() resolves when no chart is being (re-)embedded, nor any data file loading or
 * page update passed to Atlas.track(promise) pending.
 *
 * A setup may return a promise (e.g. its first view's data files loading): the charts are
 * mounted once every setup has settled.
 *
 * Data files (generator/render/datafiles.py): Atlas.loadData(name) injects the classic script
 * `data/NAME.js` once (no fetch: works from file:// and over HTTP under the CSP), which calls
 * Atlas.provide(name, data); it resolves with the data, or rejects with an Error whose `path`
 * names the file. Atlas.dataNow(name) is the data if loaded, else undefined.
 * Atlas.chartMessage(id, text, failed) shows one line in chart `id`'s figure (a loading note,
 * or with `failed` a failure, which hides the chart); text null removes it. */
(function () {
  "use strict";

  var MAX_ROWS = 50;
  var setups = [];
  var readyHooks = [];
  var inflight = [];
  var mountHooks = {};
  var Atlas = {
    views: {},
    specs: {},
    theme: null,  /* the theme the charts were last embedded with */
    register: function (setup) { setups.push(setup); },
    beforeReady: function (hook) { readyHooks.push(hook); },
    embedding: function () {
      var pending = inflight.slice();
      return Promise.all(pending).then(function () {
        return inflight.length ? Atlas.embedding() : undefined;
      });
    },
    readJson: function (id) {
      var node = document.getElementById(id);
      return node ? JSON.parse(node.textContent) : null;
    },
    track: function (promise) {
      var quiet = promise.then(null, function () { /* the caller reports its own failure */ });
      inflight.push(quiet);
      function forget() { inflight.splice(inflight.indexOf(quiet), 1); }
      quiet.then(forget, forget);
      return promise;
    },
    provide: function (name, data) { store[name] = data; },
    dataPath: function (name) { return "data/" + name + ".js"; },
    missingLine: function (error) {
      return (error && error.path ? "Could not load " + error.path : String(error)) +
        ": this data file is missing from the site folder; rebuild the site to restore it.";
    },
    dataNow: function (name) { return has(store, name) ? store[name] : undefined; },
    loadData: function (name) {
      if (!has(loads, name)) loads[name] = Atlas.track(injectData(name));
      return loads[name];
    },
    chartMessage: function (id, text, failed) {
      var element = document.getElementById(id);
      var figure = element && (element.closest(".chart") || element.parentNode);
      if (!figure) return;
      var line = figure.querySelector(".chart-message");
      figure.classList.toggle("chart-failed", !!(text && failed));
      if (text === null || text === undefined) {
        if (line) line.parentNode.removeChild(line);
        return;
      }
      if (!line) {
        line = document.createElement("p");
        line.className = "chart-message";
        line.setAttribute("role", "status");
        figure.insertBefore(line, element);
      }
      line.textContent = text;
      line.setAttribute("data-state", failed ? "failed" : "loading");
    },
    onMount: function (id, hook) { (mountHooks[id] = mountHooks[id] || []).push(hook); },
    remount: function (id, spec) {
      var element = document.getElementById(id);
      if (Atlas.views[id]) Atlas.views[id].finalize();
      Atlas.specs[id] = spec;  /* a theme re-embed draws the new spec */
      return embed(element, spec);
    },
    dark: function () {
      if (window.AtlasTheme) return window.AtlasTheme.current() === "dark";
      return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    },
  };
  window.Atlas = Atlas;
  var store = {};
  var loads = {};

  function has(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }

  function injectData(name) {
    var path = Atlas.dataPath(name);
    return new Promise(function (resolve, reject) {
      function fail() {
        delete loads[name];  /* a later call tries again */
        var error = new Error("Could not load " + path);
        error.path = path;
        reject(error);
      }
      var script = document.createElement("script");
      script.src = path;
      script.onload = function () { if (has(store, name)) resolve(store[name]); else fail(); };
      script.onerror = fail;
      document.head.appendChild(script);
    });
  }
  window.__atlasViews = Atlas.views;
  window.__atlasReady = false;

  function fire(name, detail) {
    var event;
    try {
      event = new CustomEvent(name, { detail: detail });
    } catch (e) {
      event = document.createEvent("CustomEvent");
      event.initCustomEvent(name, false, false, detail);
    }
    document.dispatchEvent(event);
  }

  function embed(element, spec) {
    /* ast + interpreter: Vega evaluates expressions without eval, so the CSP needs no
     * 'unsafe-eval'; default styles off: their CSS ships in atlas.css, no inline <style>. */
    var dark = Atlas.dark();
    /* Vega labels its container with the spec's description ("Vega visualization" without
     * one): keep the page's own (possibly page-updated) aria-label instead. */
    var label = element.getAttribute("aria-label");
    if (label && spec && typeof spec === "object") spec.description = label;
    /* SVG, unless the spec asks for a canvas (usermeta.renderer: a chart of more marks
     * than SVG draws quickly, charts/common.py canvas_beyond). */
    var renderer = (spec && spec.usermeta && spec.usermeta.renderer) || "svg";
    var options = {
      actions: false, renderer: renderer, theme: dark ? "dark" : undefined, ast: true,
      defaultStyle: false, tooltip: { disableDefaultStyle: true, theme: dark ? "dark" : "light" },
    };
    var done = window.vegaEmbed(element, spec, options).then(function (result) {
      Atlas.views[element.id] = result.view;
      watchData(element.id, result.view);
      (mountHooks[element.id] || []).forEach(function (hook) { hook(result.view); });
      return result.view;
    });
    inflight.push(done);
    function forget() { inflight.splice(inflight.indexOf(done), 1); }
    done.then(forget, forget);
    return done;
  }

  function embedAll() {
    var ids = Object.keys(Atlas.specs);
    Atlas.theme = Atlas.dark() ? "dark" : "light";
    document.documentElement.setAttribute("data-chart-theme", Atlas.theme);
    return Promise.all(ids.map(function (id) {
      return embed(document.getElementById(id), Atlas.specs[id]);
    })).then(function () {
      fire("atlas:embedded", { theme: Atlas.theme });
      refreshOpenTables();
    });
  }

  /* --- Data tables ---------------------------------------------------------------------- */

  function plainRows(rows) {
    /* Own enumerable string keys only: drops Vega's symbol tuple ids. */
    return (rows || []).map(function (row) {
      if (row === null || typeof row !== "object") return { value: row };
      var out = {};
      Object.keys(row).forEach(function (key) { out[key] = row[key]; });
      return out;
    });
  }

  function inlineValues(spec, found) {
    /* Inline data.values anywhere in the spec (layers, concats, facets). */
    if (!spec || typeof spec !== "object") return found;
    if (Array.isArray(spec)) {
      spec.forEach(function (item) { inlineValues(item, found); });
      return found;
    }
    if (spec.data && Array.isArray(spec.data.values)) found.push(spec.data.values);
    Object.keys(spec).forEach(function (key) {
      if (key !== "data" && key !== "datasets" && typeof spec[key] === "object") inlineValues(spec[key], found);
    });
    return found;
  }

  /* The tables of a chart: [{rows}], current view data first, else the spec's. */
  function chartData(id) {
    var spec = Atlas.specs[id] || {};
    var view = Atlas.views[id];
    var names = Object.keys(spec.datasets || {});
    var tables = names.map(function (name) {
      var rows = spec.datasets[name];
      if (view) {
        try { rows = view.data(name); } catch (e) { /* not a view dataset: use the spec's */ }
      }
      return plainRows(rows);
    });
    inlineValues(spec, []).forEach(function (values) { tables.push(plainRows(values)); });
    return tables;
  }

  /* Current (possibly swapped) datasets of a view, so a re-embed keeps what the page showed. */
  function currentDatasets(id) {
    var spec = Atlas.specs[id];
    var view = Atlas.views[id];
    if (!spec || !view || !spec.datasets) return;
    Object.keys(spec.datasets).forEach(function (name) {
      try { spec.datasets[name] = plainRows(view.data(name)); } catch (e) { /* keep the spec's */ }
    });
  }

  function formatValue(value) {
    if (typeof value === "number") {
      return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    }
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function buildTable(rows, index, count, label) {
    var wrap = document.createElement("div");
    wrap.className = "table-scroll";
    var table = document.createElement("table");
    table.className = "data-table";
    var caption = document.createElement("caption");
    var shown = Math.min(rows.length, MAX_ROWS);
    caption.textContent = (count > 1 ? "Dataset " + (index + 1) + " of " + count + ": " : "") +
      (rows.length > MAX_ROWS ? "first " + shown + " of " + rows.length + " rows" :
        rows.length + " row" + (rows.length === 1 ? "" : "s")) + " of the data behind: " + label;
    table.appendChild(caption);
    var columns = [];
    rows.slice(0, MAX_ROWS).forEach(function (row) {
      Object.keys(row).forEach(function (key) { if (columns.indexOf(key) < 0) columns.push(key); });
    });
    var head = table.createTHead().insertRow();
    columns.forEach(function (key) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = key;
      head.appendChild(th);
    });
    var body = table.createTBody();
    rows.slice(0, MAX_ROWS).forEach(function (row) {
      var tr = body.insertRow();
      columns.forEach(function (key) { tr.insertCell().textContent = formatValue(row[key]); });
    });
    wrap.appendChild(table);
    return wrap;
  }

  function fillTable(details) {
    var id = details.getAttribute("data-chart");
    var body = details.querySelector(".chart-data-body");
    var element = document.getElementById(id);
    if (!body || !element) return;
    var label = element.getAttribute("aria-label") || id;
    var tables = chartData(id).filter(function (rows) { return rows.length; });
    body.textContent = "";
    if (!tables.length) {
      var empty = document.createElement("p");
      empty.textContent = "This chart has no data rows.";
      body.appendChild(empty);
      return;
    }
    tables.forEach(function (rows, i) { body.appendChild(buildTable(rows, i, tables.length, label)); });
  }

  function refreshOpenTables() {
    var open = document.querySelectorAll("details.chart-data[open]");
    Array.prototype.forEach.call(open, fillTable);
  }

  function watchData(id, view) {
    /* Refresh an open table whenever a page script swaps the chart's data. */
    var spec = Atlas.specs[id] || {};
    Object.keys(spec.datasets || {}).forEach(function (name) {
      try {
        view.addDataListener(name, function () {
          var details = document.querySelector('details.chart-data[data-chart="' + id + '"]');
          if (details && details.open) fillTable(details);
        });
      } catch (e) { /* not a view dataset */ }
    });
  }

  function wireTables() {
    var all = document.querySelectorAll("details.chart-data");
    Array.prototype.forEach.call(all, function (details) {
      details.addEventListener("toggle", function () { if (details.open) fillTable(details); });
    });
  }

  /* --- Start ---------------------------------------------------------------------------- */

  var busy = false;
  var firstMount = true;

  /* Run the beforeReady hooks once, after the first mount. */
  function readyGate() {
    if (!firstMount) return Promise.resolve();
    firstMount = false;
    return readyHooks.reduce(function (chain, hook) {
      return chain.then(function () { return hook(); });
    }, Promise.resolve());
  }

  /* Re-embed every chart when the effective theme differs from the one they were drawn in. */
  function syncTheme() {
    var theme = Atlas.dark() ? "dark" : "light";
    if (busy || theme === Atlas.theme) return;
    busy = true;
    window.__atlasReady = false;
    Object.keys(Atlas.views).forEach(function (id) {
      currentDatasets(id);
      Atlas.views[id].finalize();
      delete Atlas.views[id];
    });
    mount();
  }

  function mount() {
    busy = true;
    embedAll().then(readyGate).then(function () {
      busy = false;
      window.__atlasReady = true;
      syncTheme();  /* the theme may have changed while the charts were drawn */
    }, function (error) {
      busy = false;
      console.error("Model Atlas: a chart failed to render:", error);
    });
  }

  function start() {
    var elements = Array.prototype.slice.call(document.querySelectorAll(".vega-embed[data-spec]"));
    elements.forEach(function (element) {
      Atlas.specs[element.id] = Atlas.readJson(element.getAttribute("data-spec"));
    });
    var waits = setups.map(function (setup) {
      return Promise.resolve(setup(Atlas.specs)).then(null, function (error) {
        console.error("Model Atlas: a page script failed:", error);
      });
    });
    wireTables();
    document.addEventListener("atlas:themechange", syncTheme);
    Promise.all(waits).then(mount);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else window.setTimeout(start, 0);
})();
