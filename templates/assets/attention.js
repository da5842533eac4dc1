/* Attention page: decode the packed weights once per example and kind, and swap the datasets of
 * the heatmap (one head), the head view (one layer, checked heads) and the layer x head grid.
 * Data: {n_heads, scale, kinds: [{id, label, query, key, n_layers, caption}], examples: [{text,
 * label, target, tokens: {side: [...]}, weights: {kind id: base64 uint16 [layer, head, q, k]}}],
 * overview_tokens, head_view_min_weight, head_colors}.
 * Encoder-decoder models have three kinds (encoder, decoder, cross) and a kind selector; all
 * three charts follow the selected kind (its layers, its query tokens and its key tokens). */
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

  /* maps(data, kind, example) -> {queries, keys, w(layer, head, q, k) in [0, 1]}. */
  function maps(data, kindIndex, example) {
    var kind = data.kinds[kindIndex];
    var item = data.examples[example];
    if (!item.decoded) item.decoded = {};
    if (!item.decoded[kind.id]) item.decoded[kind.id] = decodeWeights(item.weights[kind.id]);
    var weights = item.decoded[kind.id];
    var queries = item.tokens[kind.query], keys = item.tokens[kind.key];
    var nq = queries.length, nk = keys.length;
    return {
      queries: queries,
      keys: keys,
      w: function (layer, head, q, k) {
        return weights[((layer * data.n_heads + head) * nq + q) * nk + k] / data.scale;
      },
    };
  }

  function attentionCells(data, s) {
    var m = maps(data, s.kind, s.example);
    var queries = m.queries.map(function (t, i) { return tokenLabel(i, t); });
    var keys = m.keys.map(function (t, i) { return tokenLabel(i, t); });
    var cells = [];
    for (var q = 0; q < queries.length; q++) {
      for (var k = 0; k < keys.length; k++) {
        cells.push({ query: queries[q], key: keys[k], weight: m.w(s.layer, s.head, q, k) });
      }
    }
    return cells;
  }

  /* Head view: one line per (query, key, head) with weight >= the page's minimum; query tokens
   * on the left, key tokens on the right. */
  function headViewData(data, s) {
    var m = maps(data, s.kind, s.example);
    var lines = [];
    s.heads.forEach(function (head) {
      for (var q = 0; q < m.queries.length; q++) {
        for (var k = 0; k < m.keys.length; k++) {
          var value = m.w(s.layer, head, q, k);
          if (value >= data.head_view_min_weight) {
            lines.push({ src: q, dst: k, head: head, weight: value,
                         from: tokenLabel(q, m.queries[q]), to: tokenLabel(k, m.keys[k]) });
          }
        }
      }
    });
    return {
      lines: lines,
      left: m.queries.map(function (t, i) { return { src: i, token: t }; }),
      right: m.keys.map(function (t, i) { return { dst: i, token: t }; }),
    };
  }

  /* Overview grid: every layer x head; beyond overview_tokens tokens, blocks of `size`
   * tokens: a cell is the attention a block of queries (mean) gives a block of keys (sum),
   * so each row of cells still sums to 1. */
  function blocks(data, n) {
    var size = n > data.overview_tokens ? Math.ceil(n / data.overview_tokens) : 1;
    return { size: size, count: Math.ceil(n / size) };
  }

  function blockLabel(tokens, start, size) {
    var end = Math.min(tokens.length, start + size);
    if (size === 1) return tokenLabel(start, tokens[start]);
    var text = tokens.slice(start, end).join(" ");
    if (text.length > 40) text = text.slice(0, 39) + "…";
    return "tokens " + start + "–" + (end - 1) + ": " + text;
  }

  function blockLabels(tokens, b) {
    var labels = [];
    for (var i = 0; i < b.count; i++) labels.push(blockLabel(tokens, i * b.size, b.size));
    return labels;
  }

  function overviewCells(data, s) {
    var m = maps(data, s.kind, s.example);
    var nq = m.queries.length, nk = m.keys.length;
    var bq = blocks(data, nq), bk = blocks(data, nk);
    var qLabels = blockLabels(m.queries, bq), kLabels = blockLabels(m.keys, bk);
    var cells = [];
    for (var layer = 0; layer < data.kinds[s.kind].n_layers; layer++) {
      for (var head = 0; head < data.n_heads; head++) {
        for (var qb = 0; qb < bq.count; qb++) {
          var q0 = qb * bq.size, q1 = Math.min(nq, q0 + bq.size);
          for (var kb = 0; kb < bk.count; kb++) {
            var k0 = kb * bk.size, k1 = Math.min(nk, k0 + bk.size);
            var total = 0;
            for (var q = q0; q < q1; q++) for (var k = k0; k < k1; k++) total += m.w(layer, head, q, k);
            cells.push({ layer: layer, head: head, q: qb, k: kb, weight: total / (q1 - q0),
                         query: qLabels[qb], key: kLabels[kb] });
          }
        }
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
    var heatmap = document.getElementById("chart-attention-heatmap");
    var headView = document.getElementById("chart-attention-head-view");
    var overview = document.getElementById("chart-attention-overview");
    if (!data || !heatmap) return;
    var selects = {
      kind: document.getElementById("select-kind"),
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name='head-view']"));
    var textNode = document.getElementById("example-text");
    var targetNode = document.getElementById("target-text");
    var kindNode = document.getElementById("kind-text");
    var overviewNote = document.getElementById("overview-note");
    Array.prototype.forEach.call(document.querySelectorAll(".swatch[data-head]"), function (swatch) {
      swatch.style.backgroundColor = data.head_colors[+swatch.getAttribute("data-head")];
    });

    function selection() {
      return {
        kind: selects.kind ? +selects.kind.value : 0,
        example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value,
        heads: boxes.filter(function (b) { return b.checked; }).map(function (b) { return +b.value; }),
      };
    }
    function overviewText(s) {
      var m = maps(data, s.kind, s.example);
      var nq = m.queries.length, nk = m.keys.length;
      var size = Math.max(blocks(data, nq).size, blocks(data, nk).size);
      var counts = nq === nk ? nq + " tokens" : nq + " query and " + nk + " key tokens";
      if (size === 1) {
        return "This example has " + counts + ": every cell is one query-key pair. Examples longer than " +
          data.overview_tokens + " tokens are shown averaged over blocks of consecutive tokens.";
      }
      return "This example has " + counts + ", more than " + data.overview_tokens + ": each cell is a block of " +
        "consecutive tokens (the mean over the block's queries of their total weight on the block's keys).";
    }
    function describe(s) {
      var item = data.examples[s.example];
      var kind = data.kinds[s.kind];
      var several = data.kinds.length > 1;
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      if (targetNode) {
        targetNode.textContent = (data.target === "field" ? "Target: " : "Greedy output: ") + item.target;
      }
      if (kindNode) kindNode.textContent = kind.caption;
      heatmap.setAttribute("data-selection", kind.id + " attention, example " + s.example +
        ", layer " + s.layer + ", head " + s.head);
      heatmap.setAttribute("aria-label", kind.label + " heatmap, layer " + s.layer + ", head " +
        s.head + ", example " + (s.example + 1));
      if (headView) {
        headView.setAttribute("data-selection", kind.id + " attention, example " + s.example +
          ", layer " + s.layer + ", heads " + s.heads.join(" "));
        headView.setAttribute("aria-label", (several ? kind.label + " head view" : "Head view") +
          " of layer " + s.layer + ", heads " + (s.heads.length ? s.heads.join(", ") : "none") +
          ", example " + (s.example + 1));
      }
      if (overview) {
        overview.setAttribute("data-selection", kind.id + " attention, example " + s.example);
        overview.setAttribute("aria-label", (several ? kind.label + ": every" : "Every") +
          " layer and head of example " + (s.example + 1) + " as small attention heatmaps");
        if (overviewNote) overviewNote.textContent = overviewText(s);
      }
    }

    var first = selection();
    specs[heatmap.id].datasets.cells = attentionCells(data, first);
    if (headView) {
      var hv = headViewData(data, first);
      Object.keys(hv).forEach(function (name) { specs[headView.id].datasets[name] = hv[name]; });
    }
    if (overview) specs[overview.id].datasets.grid = overviewCells(data, first);
    describe(first);

    var shown = { example: first.example, kind: first.kind };
    function update() {
      if (selects.kind) fillLayers(selects.layer, data.kinds[+selects.kind.value].n_layers);
      var s = selection();
      var views = window.Atlas.views;  /* read each time: a theme change replaces the views */
      var pending = [];
      if (views[heatmap.id]) {
        views[heatmap.id].data("cells", attentionCells(data, s));  /* replaces the dataset */
        pending.push(views[heatmap.id].runAsync());
      }
      if (headView && views[headView.id]) {
        var next = headViewData(data, s);
        Object.keys(next).forEach(function (name) { views[headView.id].data(name, next[name]); });
        pending.push(views[headView.id].runAsync());
      }
      if (overview && views[overview.id] && (shown.example !== s.example || shown.kind !== s.kind)) {
        views[overview.id].data("grid", overviewCells(data, s));
        pending.push(views[overview.id].runAsync());
        shown.example = s.example;
        shown.kind = s.kind;
      }
      Promise.all(pending).then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) {
      if (selects[key]) selects[key].addEventListener("change", update);
    });
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    function setAll(checked) {
      boxes.forEach(function (box) { box.checked = checked; });
      update();
    }
    var all = document.getElementById("head-view-all");
    var none = document.getElementById("head-view-none");
    if (all) all.addEventListener("click", function () { setAll(true); });
    if (none) none.addEventListener("click", function () { setAll(false); });

    /* Clicking a small map of the grid opens that layer and head above. */
    if (overview) {
      window.Atlas.onMount(overview.id, function (view) {
        view.addEventListener("click", function (event, item) {
          var d = item && item.datum;
          if (!d || d.layer === undefined || d.head === undefined) return;
          selects.layer.value = String(d.layer);
          selects.head.value = String(d.head);
          update();
          heatmap.scrollIntoView({ block: "nearest" });
        });
      });
    }
  });
})();
