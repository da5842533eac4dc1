/* Selector-driven charts: a chart's `rows` dataset follows one or more <select> elements.
 *
 * Atlas.bindSelects(specs, chartId, selectIds, rowsFor[, filesFor]) fills the chart's dataset for
 * the current selection before mounting and swaps it (view.data) on every change; after each
 * swap the chart element's data-selection attribute names what it shows. With filesFor(values)
 * -> [data file names] (atlas.js Atlas.loadData), rowsFor runs once those files are loaded (a
 * loading line meanwhile; a file that fails to load leaves a line naming it in place of the
 * chart). Returns a promise of the first rows (a page setup returns it, so the charts mount
 * with them). */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  Atlas.bindSelects = function (specs, chartId, selectIds, rowsFor, filesFor) {
    var element = document.getElementById(chartId);
    var selects = selectIds.map(function (id) { return document.getElementById(id); });
    if (!element || !specs[chartId] || selects.some(function (s) { return !s; })) return Promise.resolve();
    function values() { return selects.map(function (s) { return s.value; }); }
    function describe(v) { element.setAttribute("data-selection", v.join(" | ")); }
    var ticket = 0;
    /* Resolves true once the files of `v` are loaded (false: a later change came first). */
    function load(v) {
      var mine = ++ticket;
      var names = filesFor ? filesFor(v) : [];
      var absent = names.filter(function (name) { return Atlas.dataNow(name) === undefined; });
      if (absent.length) Atlas.chartMessage(chartId, "Loading " + absent.map(Atlas.dataPath).join(", ") + "…");
      return Promise.all(names.map(Atlas.loadData)).then(function () {
        if (mine !== ticket) return false;
        Atlas.chartMessage(chartId, null);
        return true;
      }, function (error) {
        if (mine === ticket) Atlas.chartMessage(chartId, Atlas.missingLine(error), true);
        return false;
      });
    }
    var first = values();
    var ready = Promise.resolve();
    if (!filesFor) {  /* everything embedded: the first rows now */
      specs[chartId].datasets.rows = rowsFor(first);
      describe(first);
    } else {
      ready = load(first).then(function (ok) {
        if (!ok) return;
        specs[chartId].datasets.rows = rowsFor(first);
        describe(first);
      });
    }
    selects.forEach(function (select) {
      select.addEventListener("change", function () {
        var v = values();
        if (!filesFor) {
          var view = Atlas.views[chartId];
          if (!view) return;
          view.data("rows", rowsFor(v));  /* replaces the dataset */
          view.runAsync().then(function () { describe(v); });
          return;
        }
        Atlas.track(load(v).then(function (ok) {
          var view = Atlas.views[chartId];
          if (!ok || !view) return;
          view.data("rows", rowsFor(v));  /* replaces the dataset */
          return view.runAsync().then(function () { describe(v); });
        }));
      });
    });
    return ready;
  };

  /* Replace a <select>'s options with [value, label] pairs, keeping the value when present. */
  Atlas.setOptions = function (select, options) {
    var keep = select.value;
    while (select.firstChild) select.removeChild(select.firstChild);
    options.forEach(function (pair) {
      var option = document.createElement("option");
      option.value = pair[0];
      option.textContent = pair[1];
      select.appendChild(option);
    });
    if (options.some(function (pair) { return pair[0] === keep; })) select.value = keep;
  };

  Atlas.decodeBase64 = function (text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  };

  /* A number as d3-format's ".4g" writes it (toPrecision(4), U+2212 for a minus that does
   * not round away): for tooltips the page builds once per row (charts/common.py DENSE_MARK). */
  Atlas.format4g = function (x) {
    var text = Math.abs(x).toPrecision(4);
    return x < 0 && +text !== 0 ? "\u2212" + text : text;
  };
})();
