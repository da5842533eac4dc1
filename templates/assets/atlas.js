/* Model Atlas page runtime: mounts every chart with vega-embed and wires the page's selectors.
 * Chart specs and data live in <script type="application/json"> blocks; nothing is fetched. */
(function () {
  "use strict";

  var views = {};
  window.__atlasViews = views;
  window.__atlasReady = false;

  function dark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function embed(element, spec) {
    /* ast + interpreter: Vega evaluates expressions without eval, so the CSP needs no
     * 'unsafe-eval'; default styles off: their CSS ships in atlas.css, no inline <style>. */
    var options = {
      actions: false, renderer: "svg", theme: dark() ? "dark" : undefined, ast: true,
      defaultStyle: false, tooltip: { disableDefaultStyle: true, theme: dark() ? "dark" : "light" },
    };
    return window.vegaEmbed(element, spec, options).then(function (result) {
      views[element.id] = result.view;
      return result.view;
    });
  }

  /* ---- attention page: decode packed weights, swap the heatmap's dataset on selection ---- */

  function decodeWeights(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new Uint16Array(bytes.buffer);
  }

  function tokenLabel(index, token) {
    return ("000" + index).slice(-4) + " " + token;
  }

  function attentionCells(data, example, layer, head) {
    var item = data.examples[example];
    if (!item.decoded) item.decoded = decodeWeights(item.weights);
    var n = item.tokens.length;
    var offset = (layer * data.n_heads + head) * n * n;
    var labels = item.tokens.map(function (t, i) { return tokenLabel(i, t); });
    var cells = [];
    for (var q = 0; q < n; q++) {
      for (var k = 0; k < n; k++) {
        cells.push({ query: labels[q], key: labels[k], weight: item.decoded[offset + q * n + k] / data.scale });
      }
    }
    return cells;
  }

  function setupAttention(specs) {
    var data = readJson("attention-data");
    var element = document.getElementById("chart-attention-heatmap");
    if (!data || !element) return null;
    var selects = {
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var textNode = document.getElementById("example-text");
    function selection() {
      return {
        example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value,
      };
    }
    function describe(s) {
      var item = data.examples[s.example];
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      element.setAttribute("data-selection", "example " + s.example + ", layer " + s.layer + ", head " + s.head);
      element.setAttribute("aria-label", "Attention heatmap, layer " + s.layer + ", head " + s.head +
        ", example " + (s.example + 1));
    }
    var spec = specs[element.id];
    var first = selection();
    spec.datasets.cells = attentionCells(data, first.example, first.layer, first.head);
    describe(first);
    specs[element.id] = spec;
    function update() {
      var s = selection();
      var view = views[element.id];
      if (!view) return;
      var values = attentionCells(data, s.example, s.layer, s.head);
      view.data("cells", values);  /* replaces the dataset: remove all, insert the new cells */
      view.runAsync().then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) { selects[key].addEventListener("change", update); });
    return update;
  }

  function mountAll() {
    var elements = Array.prototype.slice.call(document.querySelectorAll(".vega-embed[data-spec]"));
    var specs = {};
    elements.forEach(function (element) { specs[element.id] = readJson(element.getAttribute("data-spec")); });
    setupAttention(specs);
    return Promise.all(elements.map(function (element) { return embed(element, specs[element.id]); }));
  }

  function start() {
    mountAll().then(function () { window.__atlasReady = true; }, function (error) {
      console.error("Model Atlas: a chart failed to render:", error);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
