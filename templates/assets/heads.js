/* Heads page: metric selector for the layer x head heatmap, sortable table of heads, and the
 * query/key map of the selected head (dataset swap; the colour toggle remounts the chart). */
(function () {
  "use strict";

  function metricCells(data, name) {
    var label = name;
    data.metrics.forEach(function (m) { if (m.name === name) label = m.label; });
    return data.rows.filter(function (r) { return r[name] !== null; }).map(function (r) {
      return { layer: r.layer, head: r.head, value: r[name], metric: label };
    });
  }

  function setupMetrics(specs) {
    var data = window.Atlas.readJson("heads-data");
    var element = document.getElementById("chart-heads-heatmap");
    var select = document.getElementById("select-metric");
    if (!data || !element || !select) return;
    var items = Array.prototype.slice.call(document.querySelectorAll("#metric-definitions [data-metric]"));
    function describe(name) {
      element.setAttribute("data-selection", "metric " + name);
      element.setAttribute("aria-label", "Heatmap of " + select.options[select.selectedIndex].text +
        " for every layer and head");
      items.forEach(function (item) {
        item.classList.toggle("current", item.getAttribute("data-metric") === name);
      });
    }
    specs[element.id].datasets.cells = metricCells(data, select.value);
    describe(select.value);
    select.addEventListener("change", function () {
      var view = window.Atlas.views[element.id];
      if (!view) return;
      var name = select.value;
      view.data("cells", metricCells(data, name));
      view.runAsync().then(function () { describe(name); });
    });
  }

  /* Sortable table: one button per column header; numbers sort numerically, n/a last. */
  function setupTable() {
    var table = document.getElementById("heads-table");
    if (!table) return;
    var body = table.tBodies[0];
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (th, column) {
      var button = th.querySelector("button");
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column].getAttribute("data-value");
          var y = b.cells[column].getAttribute("data-value");
          if (x === "" || y === "") return (x === "") - (y === "");
          return ascending ? x - y : y - x;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        table.setAttribute("data-sorted", column + (ascending ? " ascending" : " descending"));
      });
    });
  }

  function qkPoints(data, layer, head) {
    var entry = null;
    data.heads.forEach(function (h) { if (h.layer === layer && h.head === head) entry = h; });
    if (!entry) return [];
    var n = data.tokens.length, points = [];
    for (var i = 0; i < 2 * n; i++) {
      var t = i % n, text = data.texts[data.example[t]];
      if (text.length > 90) text = text.slice(0, 89) + "…";
      points.push({ x: entry.x[i], y: entry.y[i], kind: i < n ? "query" : "key",
                    token: data.tokens[t], position: data.position[t],
                    example: data.example[t], text: text });
    }
    return points;
  }

  function setupQk(specs) {
    var data = window.Atlas.readJson("qk-data");
    var element = document.getElementById("chart-qk-geometry");
    if (!data || !element) return;
    var specsByColour = { kind: specs[element.id], position: window.Atlas.readJson("qk-spec-position") };
    var selects = {
      layer: document.getElementById("select-qk-layer"),
      head: document.getElementById("select-qk-head"),
      colour: document.getElementById("select-qk-colour"),
    };
    var note = document.getElementById("qk-note");
    function selection() {
      return { layer: +selects.layer.value, head: +selects.head.value, colour: selects.colour.value };
    }
    function describe(s) {
      element.setAttribute("data-selection", "layer " + s.layer + ", head " + s.head + ", colour " + s.colour);
      element.setAttribute("aria-label", "Queries and keys of layer " + s.layer + ", head " + s.head +
        ", coloured by " + (s.colour === "kind" ? "query or key" : "token position"));
      data.heads.forEach(function (h) {
        if (h.layer === s.layer && h.head === s.head) {
          note.textContent = "Layer " + s.layer + ", head " + s.head + ": the two axes hold " +
            Math.round(100 * h.explained[0]) + "% and " + Math.round(100 * h.explained[1]) +
            "% of the variance of its queries and keys.";
        }
      });
    }
    var first = selection();
    specs[element.id].datasets.points = qkPoints(data, first.layer, first.head);
    describe(first);
    var shownColour = first.colour;
    function update() {
      var s = selection();
      var points = qkPoints(data, s.layer, s.head);
      var done;
      if (s.colour !== shownColour) {
        var spec = JSON.parse(JSON.stringify(specsByColour[s.colour]));
        spec.datasets.points = points;
        shownColour = s.colour;
        done = window.Atlas.remount(element.id, spec);
      } else {
        var view = window.Atlas.views[element.id];
        if (!view) return;
        view.data("points", points);
        done = view.runAsync();
      }
      done.then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) { selects[key].addEventListener("change", update); });
  }

  window.Atlas.register(function (specs) {
    window.Atlas.linkOnClick("chart-heads-heatmap", window.Atlas.headLink);
    setupMetrics(specs);
    setupTable();
    setupQk(specs);
  });
})();
