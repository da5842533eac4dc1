/* Attention scores before the softmax. Attention page: the heatmap of the selected example,
 * layer, head (and attention kind) from `scores-data` {n_heads, kinds: [{id, label, query, key,
 * n_layers, causal, windows}], examples: [{tokens: {side: [...]}}], scores: [{kind id: {scale}}]}
 * and the head's data file (attention.js `headFile`: `scores`, base64 int16 [q, k] multiples of
 * the scale); it follows the weights heatmap, which attention.js redraws once a view's files are
 * loaded (selectors, URL fragment, a click on the grid). Activations page: the corpus-wide
 * histogram of one layer and head, from its layer's data file `activations-scores-L` {head:
 * [[start, end, fraction]]}.
 * Row builders mirror generator/render/pages/score_section.py; rows carry their tooltip in `tip`. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function decodeScores(values, scale) {
    var bytes = Atlas.decodeBase64(values);
    return { values: new Int16Array(bytes.buffer), scale: scale };
  }

  function visibleKey(q, k, causal, window) {
    return (!causal || k <= q) && (window === null || window === undefined || k > q - window);
  }

  function pad4(n) { return ("000" + n).slice(-4); }

  function scoreCells(data, example, kindIndex, layer, head) {
    var kind = data.kinds[kindIndex], item = data.examples[example];
    if (!kind || !item || layer >= kind.n_layers) return [];
    var queries = item.tokens[kind.query], keys = item.tokens[kind.key];
    var name = Atlas.attentionHeadFile(example, kind.id, layer, head);
    var file = Atlas.dataNow(name);
    if (!file) return [];  /* not loaded: attention.js loads it, then redraws */
    var cache = data.decoded || (data.decoded = {});
    var map = cache[name] || (cache[name] = decodeScores(file.scores, data.scores[example][kind.id].scale));
    var nq = queries.length, nk = keys.length;
    var window = kind.windows.length ? kind.windows[layer] : null;
    var cells = [];
    for (var q = 0; q < nq; q++) {
      for (var k = 0; k < nk; k++) {
        var index = q * nk + k;
        var query = pad4(q) + " " + queries[q], key = pad4(k) + " " + keys[k];
        var score = map.values[index] * map.scale, seen = visibleKey(q, k, kind.causal, window);
        cells.push({ query: query, key: key, score: score, visible: seen,
                     tip: { query: query, key: key,  /* titles: attention_scores.py SCORE_TIP */
                            "score before the softmax": Atlas.format4g(score),
                            "seen by the softmax": String(seen) } });
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
    function values() { return ids.map(function (x) { return document.getElementById(x).value; }); }
    var element = document.getElementById(id);
    var weights = document.getElementById("chart-attention-heatmap");
    /* Every change of view redraws the weights heatmap once its files are loaded, then
     * describes it: follow that. */
    if (weights && window.MutationObserver) {
      new MutationObserver(function () {
        var view = Atlas.views[id];
        var v = values();
        if (!view || element.getAttribute("data-selection") === v.join(" | ")) return;
        view.data("rows", rows(v));
        Atlas.track(view.runAsync().then(function () {
          element.setAttribute("data-selection", v.join(" | "));
        }));
      }).observe(weights, { attributes: true, attributeFilter: ["data-selection"] });
    }
    var first = values();
    var s = first.length === 4 ? first : ["0"].concat(first);
    var kind = data.kinds[+s[0]];
    if (!kind || !data.examples.length) return;
    /* the first view's file (attention.js loads it too, once) */
    return Atlas.loadData(Atlas.attentionHeadFile(+s[1], kind.id, +s[2], +s[3])).then(function () {
      specs[id].datasets.rows = rows(first);
      element.setAttribute("data-selection", first.join(" | "));
    }, function () { /* attention.js reports the missing file */ });
  }

  function bindHistogram(specs) {
    var data = Atlas.readJson("activations-data");
    if (!data || !data.scores) return;
    /* Each layer's histograms are a data file (activation_files.py), loaded when chosen. */
    function file(v) { return "activations-scores-" + v[0]; }
    return Atlas.bindSelects(specs, "chart-activations-scores", ["select-score-layer", "select-score-head"], function (v) {
      return ((Atlas.dataNow(file(v)) || {})[v[1]] || []).map(function (b) {
        return { start: b[0], end: b[1], fraction: b[2] };
      });
    }, function (v) { return [file(v)]; });
  }

  Atlas.register(function (specs) {
    return Promise.all([bindHistogram(specs), bindHeatmap(specs)]);
  });
})();
