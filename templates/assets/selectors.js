/* Selector-driven charts: a chart's `rows` dataset follows one or more <select> elements.
 *
 * Atlas.bindSelects(specs, chartId, selectIds, rowsFor) fills the chart's dataset for the
 * current selection before mounting and swaps it (view.data) on every change; after each
 * swap the chart element's data-selection attribute names what it shows. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  Atlas.bindSelects = function (specs, chartId, selectIds, rowsFor) {
    var element = document.getElementById(chartId);
    var selects = selectIds.map(function (id) { return document.getElementById(id); });
    if (!element || !specs[chartId] || selects.some(function (s) { return !s; })) return;
    function values() { return selects.map(function (s) { return s.value; }); }
    function describe(v) { element.setAttribute("data-selection", v.join(" | ")); }
    var first = values();
    specs[chartId].datasets.rows = rowsFor(first);
    describe(first);
    selects.forEach(function (select) {
      select.addEventListener("change", function () {
        var view = Atlas.views[chartId];
        if (!view) return;
        var v = values();
        view.data("rows", rowsFor(v));  /* replaces the dataset */
        view.runAsync().then(function () { describe(v); });
      });
    });
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
})();
