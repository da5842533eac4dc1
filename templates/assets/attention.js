/* Attention page: decode the packed weights once per example and kind, and swap the datasets of
 * the heatmap (one head), the head view (one layer, checked heads) and the layer x head grid.
 * Data: {n_heads, scale, kinds: [{id, label, query, key, n_layers, caption}], examples: [{text,
 * label, target, tokens: {side: [...]}, special: {side: [positions]}}], overview_tokens,
 * head_view_min_weight, head_colors, default_heads, has_special, special_names, heatmap_specs:
 * {mode: spec}, heatmap_tips: {mode: [tooltip titles]}, heatmap_step}. Rows of the heatmap
 * and head view carry their tooltip in `tip` (charts/common.py DENSE_MARK). The maps are in
 * data files loaded when a view needs them (generator/render/pages/attention_files.py): headFile(example, kind, layer, head) ->
 * {weights: base64 uint16 [q, k], scores}, gridFile(example, kind) -> {dtype, sums: base64
 * [layer, head, query block, key block] sums of the packed weights}. A view is drawn once its
 * files are loaded (a loading line shows meanwhile); a file that fails to load leaves a one-line
 * message naming it in place of the charts.
 * Encoder-decoder models have three kinds (encoder, decoder, cross) and a kind selector; all
 * three charts follow the selected kind (its layers, its query tokens and its key tokens).
 *
 * Display options (heatmap and head view; the grid always shows stored weights): "hide special
 * tokens" leaves them out as queries and keys without renormalising the rows; "rescale each
 * row" shows each weight ÷ the largest weight of its row among the keys drawn. Row `weight`
 * fields always hold the stored weight; `shown` is what the colour / opacity shows.
 *
 * Every control's state is kept in the URL fragment by state.js (keys kind, example, layer,
 * head, heads=0,3|none, nospecial=1, rowmax=1); a link to another page may open a head with
 * #layer=L&head=H. */
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

  /* Data file names (as head_file / grid_file in attention_files.py). */
  function headFile(example, kindId, layer, head) {
    return "attention-" + example + "-" + kindId + "-" + layer + "-" + head;
  }
  function gridFile(example, kindId) { return "attention-grid-" + example + "-" + kindId; }
  window.Atlas.attentionHeadFile = headFile;

  var decoded = {};
  /* One loaded head's uint16 [q, k] weights. */
  function headWeights(name) {
    if (!decoded[name]) decoded[name] = decodeWeights(window.Atlas.dataNow(name).weights);
    return decoded[name];
  }

  /* maps(data, kind, example) -> {queries, keys, w(layer, head, q, k) in [0, 1]}: the heads
   * asked for must be loaded. */
  function maps(data, kindIndex, example) {
    var kind = data.kinds[kindIndex];
    var item = data.examples[example];
    var queries = item.tokens[kind.query], keys = item.tokens[kind.key];
    var nk = keys.length;
    var last = -1, weights = null;
    return {
      queries: queries,
      keys: keys,
      w: function (layer, head, q, k) {
        var at = layer * data.n_heads + head;
        if (at !== last) {
          weights = headWeights(headFile(example, kind.id, layer, head));
          last = at;
        }
        return weights[q * nk + k] / data.scale;
      },
    };
  }

  /* The data files a view needs: its head, the head view's heads, the example's grid. */
  function neededFiles(data, s, grid) {
    var id = data.kinds[s.kind].id;
    var names = [headFile(s.example, id, s.layer, s.head)];
    s.heads.forEach(function (head) {
      var name = headFile(s.example, id, s.layer, head);
      if (names.indexOf(name) < 0) names.push(name);
    });
    if (grid) names.push(gridFile(s.example, id));
    return names;
  }

  /* Token positions of one side drawn: all, or all but the special ones (as shown_positions). */
  function shownPositions(item, side, n, hide) {
    var special = hide && item.special && item.special[side] ? item.special[side] : [];
    var out = [];
    for (var i = 0; i < n; i++) if (special.indexOf(i) < 0) out.push(i);
    return out;
  }

  /* What the colour shows for the keys `ks` of one query row (as _row_view). */
  function rowView(values, rescale) {
    if (!rescale) return values;
    var top = values.length ? Math.max.apply(null, values) : 0;
    return values.map(function (v) { return top > 0 ? v / top : 0; });
  }

  function visible(data, s) {
    var m = maps(data, s.kind, s.example);
    var kind = data.kinds[s.kind], item = data.examples[s.example];
    m.qs = shownPositions(item, kind.query, m.queries.length, s.hide);
    m.ks = shownPositions(item, kind.key, m.keys.length, s.hide);
    return m;
  }

  /* A tooltip, built once per row (Vega would evaluate one expression per mark): the values
   * in `titles` order, numbers as d3-format's ".Nf" writes them (toFixed). */
  function tooltip(titles, values) {
    var tip = {};
    titles.forEach(function (title, i) { tip[title] = values[i]; });
    return tip;
  }

  /* A heatmap cell's tooltip (titles: data.heatmap_tips[mode], as heatmap_tip_titles). */
  function heatmapTip(titles, cell, s) {
    var values = [cell.query, cell.key, cell.weight.toFixed(3)];
    if (s.rescale) values.push(cell.shown.toFixed(2));
    if (s.hide) values.push(cell.hidden.toFixed(3));
    return tooltip(titles, values);
  }

  var LINE_TIP = ["head", "query", "key", "attention weight"];

  function attentionCells(data, s) {
    var titles = data.heatmap_tips[heatmapMode(s)];
    var m = visible(data, s);
    var hiddenKeys = [];
    for (var h = 0; h < m.keys.length; h++) if (m.ks.indexOf(h) < 0) hiddenKeys.push(h);
    var keyLabels = m.ks.map(function (k) { return tokenLabel(k, m.keys[k]); });
    var cells = [];
    m.qs.forEach(function (q) {
      var weights = m.ks.map(function (k) { return m.w(s.layer, s.head, q, k); });
      var shown = rowView(weights, s.rescale);
      var query = tokenLabel(q, m.queries[q]);
      var hidden = 0;
      hiddenKeys.forEach(function (k) { hidden += m.w(s.layer, s.head, q, k); });
      m.ks.forEach(function (k, i) {
        var cell = { query: query, key: keyLabels[i], weight: weights[i], shown: shown[i] };
        if (s.hide) cell.hidden = hidden;
        cell.tip = heatmapTip(titles, cell, s);
        cells.push(cell);
      });
    });
    return cells;
  }

  /* Head view: one line per (query, key, drawn head) with stored weight >= the page's minimum;
   * query tokens on the left, key tokens on the right (as head_view_lines). */
  function headViewData(data, s) {
    var m = visible(data, s);
    var lines = [];
    s.heads.forEach(function (head, slot) {
      m.qs.forEach(function (q) {
        var weights = m.ks.map(function (k) { return m.w(s.layer, head, q, k); });
        var shown = rowView(weights, s.rescale);
        m.ks.forEach(function (k, i) {
          if (weights[i] >= data.head_view_min_weight) {
            var from = tokenLabel(q, m.queries[q]), to = tokenLabel(k, m.keys[k]);
            lines.push({ src: q, dst: k, head: head, slot: slot, weight: weights[i], shown: shown[i],
                         from: from, to: to,
                         tip: tooltip(LINE_TIP, [head, from, to, weights[i].toFixed(3)]) });
          }
        });
      });
    });
    var tip = tokenTips(data, lines, s.heads);
    return {
      lines: lines,
      left: m.qs.map(function (q) { return { src: q, token: m.queries[q], tip: tip("src", q, m.queries[q]) }; }),
      right: m.ks.map(function (k) { return { dst: k, token: m.keys[k], tip: tip("dst", k, m.keys[k]) }; }),
    };
  }

  /* tip(field, position, token): a head view token's tooltip; per drawn head, its largest
   * weights among the lines drawn, largest first, ties by position (as _token_tips). */
  function tokenTips(data, lines, heads) {
    var groups = {};
    lines.forEach(function (line) {
      ["src", "dst"].forEach(function (field) {
        var key = field + " " + line[field] + " " + line.head;
        (groups[key] = groups[key] || []).push(line);
      });
    });
    return function (field, position, token) {
      var query = field === "src";
      var other = query ? "dst" : "src", label = query ? "to" : "from", side = query ? "keys" : "queries";
      var out = {};
      out[query ? "query token" : "key token"] = tokenLabel(position, token);
      heads.forEach(function (head) {
        var rows = (groups[field + " " + position + " " + head] || []).slice();
        rows.sort(function (a, b) { return b.weight - a.weight || a[other] - b[other]; });
        var top = rows.slice(0, data.head_view_top).map(function (r) {
          return r[label].slice(5) + " " + r.weight.toFixed(3);
        }).join(", ");
        out["head " + head + ": top " + side] = top || "none drawn";
      });
      return out;
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
    var grid = window.Atlas.dataNow(gridFile(s.example, data.kinds[s.kind].id));
    var bytes = window.Atlas.decodeBase64(grid.sums);
    var sums = grid.dtype === "u4" ? new Uint32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
    var cells = [];
    var at = 0;
    for (var layer = 0; layer < data.kinds[s.kind].n_layers; layer++) {
      for (var head = 0; head < data.n_heads; head++) {
        for (var qb = 0; qb < bq.count; qb++) {
          var rows = Math.min(nq, qb * bq.size + bq.size) - qb * bq.size;
          for (var kb = 0; kb < bk.count; kb++) {
            cells.push({ layer: layer, head: head, q: qb, k: kb, weight: sums[at++] / data.scale / rows,
                         query: qLabels[qb], key: kLabels[kb] });
          }
        }
      }
    }
    return cells;
  }

  /* Vega's "blues" scheme, the heatmap's colour scale on [0, 1]: d3's piecewise linear RGB
   * interpolation between these 11 stops (vega-scale's continuous "blues"), channels rounded
   * as d3-color writes them. window.vega is not exposed by the bundle, so it is restated here
   * (a browser test compares it with the heatmap view's own scale). */
  var BLUES = "cfe1f2bed8eca8cee58fc1de74b2d75ba3cf4592c63181bd206fb2125ca40a4a90";
  var bluesStops = null;
  function blues(t, out, at) {
    if (!bluesStops) {
      bluesStops = [];
      for (var c = 0; c < BLUES.length; c += 2) bluesStops.push(parseInt(BLUES.slice(c, c + 2), 16));
    }
    var n = bluesStops.length / 3 - 1;
    var x = Math.min(1, Math.max(0, t)) * n;
    var i = Math.max(0, Math.min(n - 1, Math.floor(x)));
    var f = x - i;
    for (var channel = 0; channel < 3; channel++) {
      var a = bluesStops[i * 3 + channel], b = bluesStops[i * 3 + 3 + channel];
      out[at + channel] = Math.round(a + (b - a) * f);
    }
    out[at + 3] = 255;
  }

  /* The grid's small maps {layer, head, url, tip}: each a PNG with one pixel per cell of
   * `cells` (overviewCells order: layer, head, query block, key block) in the "blues" colour
   * of the cell's weight; one image mark per map instead of a mark per cell. */
  function overviewMaps(data, s, cells) {
    var m = maps(data, s.kind, s.example);
    var bq = blocks(data, m.queries.length), bk = blocks(data, m.keys.length);
    var canvas = document.createElement("canvas");
    canvas.width = bk.count;
    canvas.height = bq.count;
    var context = canvas.getContext("2d");
    var image = context.createImageData(bk.count, bq.count);
    var per = bq.count * bk.count, out = [];
    var blockText = bq.size === 1 && bk.size === 1 ? "one query-key pair" :
      "a block of " + Math.max(bq.size, bk.size) + " consecutive tokens a side";
    for (var at = 0; at < cells.length; at += per) {
      for (var i = 0; i < per; i++) blues(cells[at + i].weight, image.data, i * 4);
      context.putImageData(image, 0, 0);
      var cell = cells[at];
      out.push({ layer: cell.layer, head: cell.head, url: canvas.toDataURL("image/png"),
                 tip: tooltip(MAP_TIP, [cell.layer, cell.head, bq.count + " × " + bk.count + ", each " + blockText,
                                        "open this head in the heatmap above"]) });
    }
    return out;
  }
  var MAP_TIP = ["layer", "head", "cells (query × key)", "click"];

  /* Rebuild the layer options for a kind (encoder and decoder may differ in depth). */
  function fillLayers(select, count) {
    var keep = Math.min(+select.value || 0, count - 1);
    if (select.options.length !== count) {
      while (select.options.length) select.remove(0);
      for (var i = 0; i < count; i++) select.add(new Option(String(i), String(i)));
    }
    select.value = String(keep);
  }

  function heatmapMode(s) {
    return (s.rescale ? "rowmax" : "weight") + (s.hide ? "-nospecial" : "");
  }

  /* Cell size of the heatmap: fit the key columns in the chart's column (as heatmap_step). */
  function heatmapSize(data, element, s) {
    var m = visible(data, s);
    var room = Math.max((element.parentNode || element).clientWidth - data.heatmap_step.label_room, 0);
    var step = Math.floor(room / Math.max(m.ks.length, 1));
    step = Math.max(data.heatmap_step.min, Math.min(data.heatmap_step.max, step));
    return { width: step * Math.max(m.ks.length, 1), height: step * Math.max(m.qs.length, 1) };
  }

  function modeText(data, s) {
    var text = s.rescale ?
      "Colours show each weight ÷ the largest weight of its row (every row's maximum is 1); tooltips give the stored weight." :
      "Colours show the stored attention weights" + (s.hide ? "." : ": each row sums to 1.");
    if (s.hide) {
      text += " " + data.special_names + " are hidden and the rows are not renormalised: a row sums to " +
        "1 minus its weight on them (the heatmap's tooltip gives that weight).";
    }
    return text;
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
    var checks = {
      hide: document.getElementById("hide-special"),
      rescale: document.getElementById("rescale-rows"),
    };
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name='head-view']"));
    var textNode = document.getElementById("example-text");
    var targetNode = document.getElementById("target-text");
    var kindNode = document.getElementById("kind-text");
    var modeNode = document.getElementById("mode-text");
    var overviewNote = document.getElementById("overview-note");
    Array.prototype.forEach.call(document.querySelectorAll(".swatch[data-head]"), function (swatch) {
      swatch.style.backgroundColor = data.head_colors[+swatch.getAttribute("data-head")];
    });

    function selection() {
      return {
        kind: selects.kind ? +selects.kind.value : 0,
        example: +selects.example.value, layer: +selects.layer.value, head: +selects.head.value,
        heads: boxes.filter(function (b) { return b.checked; }).map(function (b) { return +b.value; }),
        hide: !!(checks.hide && checks.hide.checked),
        rescale: !!(checks.rescale && checks.rescale.checked),
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
      var mode = (s.rescale ? ", rows rescaled to their maximum" : "") + (s.hide ? ", special tokens hidden" : "");
      textNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text;
      if (targetNode) {
        targetNode.textContent = (data.target === "field" ? "Target: " : "Greedy output: ") + item.target;
      }
      if (kindNode) kindNode.textContent = kind.caption;
      if (modeNode) modeNode.textContent = modeText(data, s);
      heatmap.setAttribute("data-selection", kind.id + " attention, example " + s.example +
        ", layer " + s.layer + ", head " + s.head + mode);
      heatmap.setAttribute("aria-label", kind.label + " heatmap, layer " + s.layer + ", head " +
        s.head + ", example " + (s.example + 1) + mode);
      if (headView) {
        headView.setAttribute("data-selection", kind.id + " attention, example " + s.example +
          ", layer " + s.layer + ", heads " + s.heads.join(" ") + mode);
        headView.setAttribute("aria-label", (several ? kind.label + " head view" : "Head view") +
          " of layer " + s.layer + ", heads " + (s.heads.length ? s.heads.join(", ") : "none") +
          ", example " + (s.example + 1) + mode);
      }
      if (overview) {
        overview.setAttribute("data-selection", kind.id + " attention, example " + s.example +
          ", selected layer " + s.layer + " head " + s.head);
        overview.setAttribute("aria-label", (several ? kind.label + ": every" : "Every") +
          " layer and head of example " + (s.example + 1) + " as small attention heatmaps; layer " +
          s.layer + ", head " + s.head + " framed");
        if (overviewNote) overviewNote.textContent = overviewText(s);
      }
    }

    /* A fresh heatmap spec for the display mode of `s`, sized to the page, holding its cells. */
    function heatmapSpec(s) {
      var spec = JSON.parse(JSON.stringify(data.heatmap_specs[heatmapMode(s)]));
      var size = heatmapSize(data, heatmap, s);
      spec.width = size.width;
      spec.height = size.height;
      spec.datasets.cells = attentionCells(data, s);
      return spec;
    }

    /* The grid's maps of view `s`; Atlas.attentionGrid keeps the cells they were painted from. */
    function gridMaps(s) {
      var cells = overviewCells(data, s);
      window.Atlas.attentionGrid = cells;
      return overviewMaps(data, s, cells);
    }

    /* Frame the selected layer and head in the grid (its params; a re-embed reads the spec's). */
    function markGrid(s, view) {
      var spec = specs[overview.id];
      (spec.params || []).forEach(function (param) {
        if (param.name === "sel_layer") param.value = s.layer;
        if (param.name === "sel_head") param.value = s.head;
      });
      if (view) return view.signal("sel_layer", s.layer).signal("sel_head", s.head).runAsync();
      return null;
    }

    var chartIds = [heatmap.id, headView && headView.id, overview && overview.id,
                    "chart-attention-scores"].filter(function (id) { return id && document.getElementById(id); });
    function say(text, failed) {
      chartIds.forEach(function (id) { window.Atlas.chartMessage(id, text, failed); });
    }

    /* Load the files of view `s`: a loading line meanwhile; rejects naming a missing file. */
    function load(s) {
      var names = neededFiles(data, s, !!overview);
      var absent = names.filter(function (name) { return window.Atlas.dataNow(name) === undefined; });
      if (!absent.length) return Promise.resolve();
      say("Loading the attention maps of example " + (s.example + 1) + "…", false);
      return Promise.all(names.map(window.Atlas.loadData));  /* draw() clears the line */
    }
    function failed(error) {
      shown.example = -1;  /* the grid is refilled once a view loads */
      say(window.Atlas.missingLine(error), true);
    }

    var first = selection();
    var shown = { example: first.example, kind: first.kind, mode: heatmapMode(first) };
    var ticket = 0;
    function update() {
      if (selects.kind) fillLayers(selects.layer, data.kinds[+selects.kind.value].n_layers);
      var s = selection();
      var mine = ++ticket;
      return window.Atlas.track(load(s).then(function () {
        if (mine === ticket) return draw(s);  /* a later change draws its own view */
      }, function (error) {
        if (mine === ticket) failed(error);
      }));
    }
    function draw(s) {
      var views = window.Atlas.views;  /* read each time: a theme change replaces the views */
      say(null);
      var pending = [];
      if (shown.mode !== heatmapMode(s)) {
        pending.push(window.Atlas.remount(heatmap.id, heatmapSpec(s)));
        shown.mode = heatmapMode(s);
      } else if (views[heatmap.id]) {
        var size = heatmapSize(data, heatmap, s);
        var spec = specs[heatmap.id];
        spec.width = size.width;  /* a theme re-embed keeps the size */
        spec.height = size.height;
        views[heatmap.id].width(size.width).height(size.height);
        views[heatmap.id].data("cells", attentionCells(data, s));  /* replaces the dataset */
        pending.push(views[heatmap.id].runAsync());
      }
      if (headView && views[headView.id]) {
        var next = headViewData(data, s);
        Object.keys(next).forEach(function (name) { views[headView.id].data(name, next[name]); });
        pending.push(views[headView.id].runAsync());
      }
      if (overview && views[overview.id]) {
        if (shown.example !== s.example || shown.kind !== s.kind) {
          views[overview.id].data("maps", gridMaps(s));
          shown.example = s.example;
          shown.kind = s.kind;
        }
        pending.push(markGrid(s, views[overview.id]));
      }
      return Promise.all(pending).then(function () { describe(s); });
    }
    Object.keys(selects).forEach(function (key) {
      if (selects[key]) selects[key].addEventListener("change", function () { update(); });
    });
    Object.keys(checks).forEach(function (key) {
      if (checks[key]) checks[key].addEventListener("change", function () { update(); });
    });
    boxes.forEach(function (box) { box.addEventListener("change", function () { update(); }); });
    function setHeads(test) {
      boxes.forEach(function (box) { box.checked = test(+box.value); });
      update();
      window.Atlas.saveState();
    }
    var buttons = {
      "head-view-all": function () { return true; },
      "head-view-none": function () { return false; },
      "head-view-selected": function (head) { return head === +selects.head.value; },
    };
    Object.keys(buttons).forEach(function (id) {
      var button = document.getElementById(id);
      if (button) button.addEventListener("click", function () { setHeads(buttons[id]); });
    });

    /* The first view: its files, then its specs (empty charts and a message if one is missing). */
    var ready = load(first).then(function () {
      say(null);
      specs[heatmap.id] = heatmapSpec(first);
      if (headView) {
        var hv = headViewData(data, first);
        Object.keys(hv).forEach(function (name) { specs[headView.id].datasets[name] = hv[name]; });
      }
      if (overview) {
        specs[overview.id].datasets.maps = gridMaps(first);
        markGrid(first, null);
      }
      describe(first);
    }, failed);

    /* The heatmap follows the width of its column. */
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(function () {
        var view = window.Atlas.views[heatmap.id];
        if (!view) return;
        var size = heatmapSize(data, heatmap, selection());
        if (size.width === view.width() && size.height === view.height()) return;
        specs[heatmap.id].width = size.width;
        specs[heatmap.id].height = size.height;
        view.width(size.width).height(size.height).runAsync();
      }, 150);
    });

    /* Clicking a small map of the grid opens that layer and head above; a re-embed (theme
     * change) keeps the frame on the selected map. */
    if (overview) {
      window.Atlas.onMount(overview.id, function (view) {
        markGrid(selection(), view);
        view.addEventListener("click", function (event, item) {
          var d = item && item.datum;
          if (!d || d.layer === undefined || d.head === undefined) return;
          selects.layer.value = String(d.layer);
          selects.head.value = String(d.head);
          update();
          window.Atlas.saveState();
          heatmap.scrollIntoView({ block: "nearest" });
        });
      });
    }
    return ready;
  });
})();
