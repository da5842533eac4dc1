/* Heads page of an encoder-decoder: the decoder self-attention / cross-attention heatmap follows
 * its two selectors. Data `heads-seq2seq-data`: {kinds: [{id, label}], rows: {kind: [{layer,
 * head, METRIC...}]}, labels: {metric: label}, undefined: [labels], undefined_why}.
 * Mirrors generator/render/pages/heads_seq2seq.py. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function kindCells(data, kind, metric) {
    return (data.rows[kind] || []).filter(function (r) { return r[metric] !== null; }).map(function (r) {
      return { layer: r.layer, head: r.head, value: r[metric], metric: data.labels[metric] };
    });
  }

  Atlas.register(function (specs) {
    var data = Atlas.readJson("heads-seq2seq-data");
    if (!data) return;
    var note = document.getElementById("seq2seq-heads-note");
    Atlas.bindSelects(specs, "chart-heads-seq2seq", ["select-s2s-kind", "select-s2s-metric"], function (v) {
      var cells = kindCells(data, v[0], v[1]);
      if (note) {
        note.textContent = cells.length ? "" : data.labels[v[1]] + " is not defined for this attention: " +
          data.undefined_why + ".";
      }
      return cells;
    });
  });
})();
