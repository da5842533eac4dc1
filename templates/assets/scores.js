/* Attention scores before the softmax. Attention page: the heatmap of the selected example,
 * layer, head (and attention kind) from `scores-data` {n_heads, kinds: [{id, label, query, key,
 * n_layers, causal, windows}], examples: [{tokens: {side: [...]}}], scores: [{kind id: {scale,
 * values: base64 int16 [layer, head, q, k]}}]}; it follows the page's selectors and, since
 * attention.js also sets them from the URL fragment or a click on the grid, every change of
 * the weights heatmap. Activations page: the corpus-wide histogram of one layer and head.
 * Row builders mirror generator/render/pages/score_section.py. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function decodeScores(packed) {
    var bytes = Atlas.decodeBase64(packed.values);
    return { values: new Int16Array(bytes.buffer), scale: packed.scale };
  }

  function visibleKey(q, k, causal, window) {
    return (!causal || k <= q) && (window === null || window === undefined || k > q - window);
  }

  function pad4(n) { return ("000" + n).slice(-4); }

  function scoreCells(data, example, kindIndex, layer, head) {
    var kind = data.kinds[kindIndex], item = data.examples[example];
    if (!kind || !item || layer >= kind.n_layers) return [];
    var queries = item.tokens[kind.query], keys = item.tokens[kind.key];
    var cache = data.decoded || (data.decoded = {});
    var key = example + "/" + kind.id;
    var map = cache[key] || (cache[key] = decodeScores(data.scores[example][kind.id]));
    var nq = queries.length, nk = keys.length;
    var window = kind.windows.length ? kind.windows[layer] : null;
    var cells = [];
    for (var q = 0; q < nq; q++) {
      for (var k = 0; k < nk; k++) {
        var index = ((layer * data.n_heads + head) * nq + q) * nk + k;
        cells.push({ query: pad4(q) + " " + queries[q], key: pad4(k) + " " + keys[k],
                     score: map.values[index] * map.scale, visible: visibleKey(q, k, kind.causal, window) });
      }
    }
    return cells;
  }

  function bindHeatmap(specs) {
    var data = Atlas.readJson("scores-data");
    var id = "chart-attention-scores";
    if (!data || !specs[id]) return;
    var ids = ["select-example", "select-layer", "select-head"];
    if (document.getElementById("select-kind")) ids.unshift("select-kind");
    function rows(v) {
      var s = v.length === 4 ? v : ["0"].concat(v);
      return scoreCells(data, +s[1], +s[0], +s[2], +s[3]);
    }
    Atlas.bindSelects(specs, id, ids, rows);
    /* attention.js sets the selectors without a change event (fragment, grid click), then
     * describes the weights heatmap: follow that too. */
    var weights = document.getElementById("chart-attention-heatmap");
    if (!weights || !window.MutationObserver) return;
    var element = document.getElementById(id);
    new MutationObserver(function () {
      var view = Atlas.views[id];
      var v = ids.map(function (x) { return document.getElementById(x).value; });
      if (!view || element.getAttribute("data-selection") === v.join(" | ")) return;
      view.data("rows", rows(v));
      view.runAsync().then(function () { element.setAttribute("data-selection", v.join(" | ")); });
    }).observe(weights, { attributes: true, attributeFilter: ["data-selection"] });
  }

  function bindHistogram(specs) {
    var data = Atlas.readJson("activations-data");
    if (!data || !data.scores) return;
    Atlas.bindSelects(specs, "chart-activations-scores", ["select-score-layer", "select-score-head"], function (v) {
      return (data.scores.bins[v[0] + "/" + v[1]] || []).map(function (b) {
        return { start: b[0], end: b[1], fraction: b[2] };
      });
    });
  }

  Atlas.register(function (specs) {
    bindHeatmap(specs);
    bindHistogram(specs);
  });
})();
