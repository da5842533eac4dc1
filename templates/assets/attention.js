/* Attention page: decode the packed weights and swap the heatmap's dataset on selection. */
(function () {
  "use strict";

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

  window.Atlas.register(function (specs) {
    var data = window.Atlas.readJson("attention-data");
    var element = document.getElementById("chart-attention-heatmap");
    if (!data || !element) return;
    var selects = {
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var textNode = document.getElementById("example-text");
    function selection() {
      return { example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value };
    }
    function describe(s) {
      var item = data.examples[s.example];
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      element.setAttribute("data-selection", "example " + s.example + ", layer " + s.layer + ", head " + s.head);
      element.setAttribute("aria-label", "Attention heatmap, layer " + s.layer + ", head " + s.head +
        ", example " + (s.example + 1));
    }
    var first = selection();
    specs[element.id].datasets.cells = attentionCells(data, first.example, first.layer, first.head);
    describe(first);
    function update() {
      var s = selection();
      var view = window.Atlas.views[element.id];
      if (!view) return;
      view.data("cells", attentionCells(data, s.example, s.layer, s.head));  /* replaces the dataset */
      view.runAsync().then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) { selects[key].addEventListener("change", update); });
  });
})();
