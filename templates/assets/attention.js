/* Attention page: decode the packed weights once per example and swap the datasets of the
 * heatmap (one head), the head view (one layer, checked heads) and the layer x head grid. */
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

  /* weights(data, example) -> function (layer, head, q, k) giving the weight in [0, 1]. */
  function weights(data, example) {
    var item = data.examples[example];
    if (!item.decoded) item.decoded = decodeWeights(item.weights);
    var n = item.tokens.length;
    return function (layer, head, q, k) {
      return item.decoded[((layer * data.n_heads + head) * n + q) * n + k] / data.scale;
    };
  }

  function attentionCells(data, example, layer, head) {
    var item = data.examples[example];
    var w = weights(data, example);
    var n = item.tokens.length;
    var labels = item.tokens.map(function (t, i) { return tokenLabel(i, t); });
    var cells = [];
    for (var q = 0; q < n; q++) {
      for (var k = 0; k < n; k++) {
        cells.push({ query: labels[q], key: labels[k], weight: w(layer, head, q, k) });
      }
    }
    return cells;
  }

  /* Head view: one line per (query, key, head) with weight >= the page's minimum. */
  function headViewData(data, example, layer, heads) {
    var item = data.examples[example];
    var w = weights(data, example);
    var n = item.tokens.length;
    var lines = [];
    heads.forEach(function (head) {
      for (var q = 0; q < n; q++) {
        for (var k = 0; k < n; k++) {
          var value = w(layer, head, q, k);
          if (value >= data.head_view_min_weight) {
            lines.push({ src: q, dst: k, head: head, weight: value,
                         from: tokenLabel(q, item.tokens[q]), to: tokenLabel(k, item.tokens[k]) });
          }
        }
      }
    });
    return {
      lines: lines,
      left: item.tokens.map(function (t, i) { return { src: i, token: t }; }),
      right: item.tokens.map(function (t, i) { return { dst: i, token: t }; }),
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

  function overviewCells(data, example) {
    var item = data.examples[example];
    var w = weights(data, example);
    var n = item.tokens.length;
    var b = blocks(data, n);
    var labels = [];
    for (var i = 0; i < b.count; i++) labels.push(blockLabel(item.tokens, i * b.size, b.size));
    var cells = [];
    for (var layer = 0; layer < data.n_layers; layer++) {
      for (var head = 0; head < data.n_heads; head++) {
        for (var qb = 0; qb < b.count; qb++) {
          var q0 = qb * b.size, q1 = Math.min(n, q0 + b.size);
          for (var kb = 0; kb < b.count; kb++) {
            var k0 = kb * b.size, k1 = Math.min(n, k0 + b.size);
            var total = 0;
            for (var q = q0; q < q1; q++) for (var k = k0; k < k1; k++) total += w(layer, head, q, k);
            cells.push({ layer: layer, head: head, q: qb, k: kb, weight: total / (q1 - q0),
                         query: labels[qb], key: labels[kb] });
          }
        }
      }
    }
    return cells;
  }

  window.Atlas.register(function (specs) {
    var data = window.Atlas.readJson("attention-data");
    var heatmap = document.getElementById("chart-attention-heatmap");
    var headView = document.getElementById("chart-attention-head-view");
    var overview = document.getElementById("chart-attention-overview");
    if (!data || !heatmap) return;
    var selects = {
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name='head-view']"));
    var textNode = document.getElementById("example-text");
    var overviewNote = document.getElementById("overview-note");
    Array.prototype.forEach.call(document.querySelectorAll(".swatch[data-head]"), function (swatch) {
      swatch.style.backgroundColor = data.head_colors[+swatch.getAttribute("data-head")];
    });

    function selection() {
      return {
        example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value,
        heads: boxes.filter(function (b) { return b.checked; }).map(function (b) { return +b.value; }),
      };
    }
    function describe(s) {
      var item = data.examples[s.example];
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      heatmap.setAttribute("data-selection", "example " + s.example + ", layer " + s.layer + ", head " + s.head);
      heatmap.setAttribute("aria-label", "Attention heatmap, layer " + s.layer + ", head " + s.head +
        ", example " + (s.example + 1));
      if (headView) {
        headView.setAttribute("data-selection", "example " + s.example + ", layer " + s.layer +
          ", heads " + s.heads.join(" "));
        headView.setAttribute("aria-label", "Head view of layer " + s.layer + ", heads " +
          (s.heads.length ? s.heads.join(", ") : "none") + ", example " + (s.example + 1));
      }
      if (overview) {
        overview.setAttribute("data-selection", "example " + s.example);
        var n = item.tokens.length, b = blocks(data, n);
        overviewNote.textContent = b.size === 1
          ? "This example has " + n + " tokens: every cell is one query-key pair. Examples longer than " +
            data.overview_tokens + " tokens are shown averaged over blocks of consecutive tokens."
          : "This example has " + n + " tokens, more than " + data.overview_tokens + ": each cell is a block of " +
            b.size + " consecutive tokens (the mean over the block's queries of their total weight on the block's keys).";
      }
    }

    var first = selection();
    specs[heatmap.id].datasets.cells = attentionCells(data, first.example, first.layer, first.head);
    if (headView) {
      var hv = headViewData(data, first.example, first.layer, first.heads);
      Object.keys(hv).forEach(function (name) { specs[headView.id].datasets[name] = hv[name]; });
    }
    if (overview) specs[overview.id].datasets.grid = overviewCells(data, first.example);
    describe(first);

    var shown = { example: first.example };
    function update() {
      var s = selection();
      var views = window.Atlas.views;
      var pending = [];
      if (views[heatmap.id]) {
        views[heatmap.id].data("cells", attentionCells(data, s.example, s.layer, s.head));
        pending.push(views[heatmap.id].runAsync());
      }
      if (headView && views[headView.id]) {
        var next = headViewData(data, s.example, s.layer, s.heads);
        Object.keys(next).forEach(function (name) { views[headView.id].data(name, next[name]); });
        pending.push(views[headView.id].runAsync());
      }
      if (overview && views[overview.id] && shown.example !== s.example) {
        views[overview.id].data("grid", overviewCells(data, s.example));
        pending.push(views[overview.id].runAsync());
        shown.example = s.example;
      }
      Promise.all(pending).then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) { selects[key].addEventListener("change", update); });
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
