/* Attention page: decode the packed weights and swap the heatmap's dataset on selection.
 * Data: {n_heads, scale, kinds: [{id, label, query, key, n_layers, caption}], examples: [{text,
 * label, target, tokens: {side: [...]}, weights: {kind id: base64 uint16 [layer, head, q, k]}}]}.
 * Encoder-decoder models have three kinds (encoder, decoder, cross) and a kind selector. */
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

  function attentionCells(data, s) {
    var kind = data.kinds[s.kind];
    var item = data.examples[s.example];
    if (!item.decoded) item.decoded = {};
    if (!item.decoded[kind.id]) item.decoded[kind.id] = decodeWeights(item.weights[kind.id]);
    var weights = item.decoded[kind.id];
    var queries = item.tokens[kind.query].map(function (t, i) { return tokenLabel(i, t); });
    var keys = item.tokens[kind.key].map(function (t, i) { return tokenLabel(i, t); });
    var nq = queries.length, nk = keys.length;
    var offset = (s.layer * data.n_heads + s.head) * nq * nk;
    var cells = [];
    for (var q = 0; q < nq; q++) {
      for (var k = 0; k < nk; k++) {
        cells.push({ query: queries[q], key: keys[k], weight: weights[offset + q * nk + k] / data.scale });
      }
    }
    return cells;
  }

  /* Rebuild the layer options for a kind (encoder and decoder may differ in depth). */
  function fillLayers(select, count) {
    var keep = Math.min(+select.value || 0, count - 1);
    if (select.options.length !== count) {
      while (select.options.length) select.remove(0);
      for (var i = 0; i < count; i++) select.add(new Option(String(i), String(i)));
    }
    select.value = String(keep);
  }

  window.Atlas.register(function (specs) {
    var data = window.Atlas.readJson("attention-data");
    var element = document.getElementById("chart-attention-heatmap");
    if (!data || !element) return;
    var selects = {
      kind: document.getElementById("select-kind"),
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var textNode = document.getElementById("example-text");
    var targetNode = document.getElementById("target-text");
    var kindNode = document.getElementById("kind-text");
    function selection() {
      return {
        kind: selects.kind ? +selects.kind.value : 0,
        example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value,
      };
    }
    function describe(s) {
      var item = data.examples[s.example];
      var kind = data.kinds[s.kind];
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      if (targetNode) {
        targetNode.textContent = (data.target === "field" ? "Target: " : "Greedy output: ") + item.target;
      }
      kindNode.textContent = kind.caption;
      element.setAttribute("data-selection", kind.id + " attention, example " + s.example +
        ", layer " + s.layer + ", head " + s.head);
      element.setAttribute("aria-label", kind.label + " heatmap, layer " + s.layer + ", head " +
        s.head + ", example " + (s.example + 1));
    }
    var first = selection();
    specs[element.id].datasets.cells = attentionCells(data, first);
    describe(first);
    function update() {
      if (selects.kind) fillLayers(selects.layer, data.kinds[+selects.kind.value].n_layers);
      var s = selection();
      var view = window.Atlas.views[element.id];
      if (!view) return;
      view.data("cells", attentionCells(data, s));  /* replaces the dataset */
      view.runAsync().then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) {
      if (selects[key]) selects[key].addEventListener("change", update);
    });
  });
})();
