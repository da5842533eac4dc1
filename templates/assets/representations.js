/* Representations page: decode the packed 2-D maps and swap chart datasets when a control changes.
 * The search box keeps only the texts holding its text (case-insensitive) on the map and lists
 * them with the match marked; clicking a point shows its text, label, split, the probe's
 * held-out prediction at the layer, its nearest neighbours and, for a showcase example, links
 * to its attention and attributions (permalinks). */
(function () {
  "use strict";

  var QUANT = 32767;

  function decode(text, scale) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    var steps = new Int16Array(bytes.buffer);
    var out = new Array(steps.length);
    for (var j = 0; j < steps.length; j++) out[j] = steps[j] * scale / QUANT;
    return out;
  }

  function percent(value) { return (100 * value).toFixed(1) + "%"; }

  window.Atlas.register(function (specs) {
    var data = window.Atlas.readJson("representations-data");
    if (!data) return;
    var controls = {
      checkpoint: document.getElementById("select-checkpoint"),
      pooling: document.getElementById("select-pooling"),
      layer: document.getElementById("select-layer"),
      projection: document.getElementById("select-projection"),
      tokenExample: document.getElementById("select-token-example"),
      search: document.getElementById("select-search"),
    };
    var charts = {
      map: document.getElementById("chart-rep-map"),
      cka: document.getElementById("chart-rep-cka"),
      tokens: document.getElementById("chart-rep-tokens"),
      separability: document.getElementById("chart-rep-separability"),
      silhouette: document.getElementById("chart-rep-silhouette"),
    };
    var nameNode = document.getElementById("checkpoint-name");
    var mapNote = document.getElementById("map-note");
    var tokenNote = document.getElementById("token-note");
    var last = data.checkpoints.length - 1;
    var several = data.checkpoints.length > 1;  /* no checkpoint wording without checkpoints */

    function selection() {
      return {
        checkpoint: controls.checkpoint ? +controls.checkpoint.value : last,
        pooling: controls.pooling.value,
        layer: +controls.layer.value,
        method: controls.projection.value,
        tokenExample: controls.tokenExample ? +controls.tokenExample.value : 0,
        search: controls.search ? controls.search.value.trim().toLowerCase() : "",
      };
    }

    function mapEntry(s) {
      var byMethod = (data.maps[s.pooling] || {})[s.method] || [];
      return byMethod[s.layer] || null;
    }

    /* Why every text has the same vector at this checkpoint, pooling and layer, or null. */
    function constantReason(s) {
      var name = data.checkpoints[s.checkpoint];
      var hit = (data.constant || []).filter(function (c) {
        return c[0] === name && c[1] === s.pooling && c[2] === s.layer;
      })[0];
      return hit ? hit[3] : null;
    }

    function mapRows(s) {
      var entry = mapEntry(s);
      /* a constant layer would be one dot: draw nothing, the note says why */
      if (!entry || entry.constant[s.checkpoint]) return { points: [], extent: [] };
      var packed = entry.maps[s.checkpoint];
      var xs = decode(packed[0], entry.scale[0]);
      var ys = decode(packed[1], entry.scale[1]);
      var points = [];
      xs.forEach(function (x, i) {
        if (s.search && data.texts[i].toLowerCase().indexOf(s.search) < 0) return;
        points.push({
          x: x, y: ys[i], text: data.texts[i], row: i,
          label: data.label_names[data.labels[i]], split: data.split_names[data.splits[i]],
        });
      });
      var e = entry.extent;
      return { points: points, extent: [{ x: e[0], y: e[2] }, { x: e[1], y: e[3] }] };
    }

    function ckaRows(s) {
      var name = data.checkpoints[s.checkpoint];
      return data.cka.filter(function (r) { return r[0] === name && r[1] === s.pooling; })
        .map(function (r) { return { layer_a: r[2], layer_b: r[3], cka: r[4] }; });
    }

    function tokenRows(s) {
      var tm = data.token_map;
      var map = tm.maps[s.layer];
      if (!map) return [];
      return tm.tokens.map(function (token, i) {
        var example = tm.token_example[i];
        return {
          x: map.x[i], y: map.y[i], token: token, example: tm.examples[example],
          label: example === s.tokenExample ? token : "",
        };
      });
    }

    function where(s) {
      return "Layer " + s.layer + ", " + s.pooling + " pooling" +
        (several ? ", " + data.checkpoints[s.checkpoint] : "");
    }

    function mapText(s, entry) {
      var reason = constantReason(s);
      if (reason) {
        return where(s) + ": nothing to draw. Every text has the same vector here, because " + reason +
          ". A probe on this input can only guess the majority class (chance).";
      }
      if (!entry) return "";
      if (s.method === "pca") {
        var ratios = entry.explained[s.checkpoint];
        var whose = !several || s.checkpoint === last ? "of the variance" :
          "of this checkpoint's variance (axes fitted on " + data.checkpoints[last] + ")";
        return where(s) + ": the two PCA axes hold " + percent(ratios[0]) + " and " +
          percent(ratios[1]) + " " + whose + ".";
      }
      return where(s) + ": t-SNE map" + (several && s.checkpoint !== last ?
        ", aligned to " + data.checkpoints[last] + "'s map by Procrustes." : ".");
    }

    function describe(s) {
      var name = data.checkpoints[s.checkpoint];
      var text = (several ? "checkpoint " + name + ", " : "") + "pooling " + s.pooling + ", layer " +
        s.layer + ", " + s.method + ", labelled sentence " + (s.tokenExample + 1);
      if (nameNode) nameNode.textContent = name;
      Object.keys(charts).forEach(function (key) {
        if (charts[key]) charts[key].setAttribute("data-selection", text);
      });
      if (charts.map) {
        charts.map.setAttribute("aria-label", "Sequence embeddings of layer " + s.layer + " (" + s.pooling +
          " pooling" + (several ? ", " + name : "") + ") projected with " + (s.method === "pca" ? "PCA" : "t-SNE"));
      }
      if (mapNote) {
        mapNote.textContent = mapText(s, mapEntry(s));
        mapNote.classList.toggle("constant", !!constantReason(s));
      }
      var tm = data.token_map.maps[s.layer];
      if (tokenNote && tm) {
        tokenNote.textContent = "Layer " + s.layer + ": the two PCA axes hold " + percent(tm.explained[0]) +
          " and " + percent(tm.explained[1]) + " of these tokens' variance; labelled: sentence " +
          (s.tokenExample + 1) + ".";
      }
    }

    /* --- Search results and point details ------------------------------------------------ */

    var resultsNode = document.getElementById("search-results");
    var detailsNode = document.getElementById("point-details");
    var SHOWN = 20;

    function el(tag, text, className) {
      var node = document.createElement(tag);
      if (text !== undefined) node.textContent = text;
      if (className) node.className = className;
      return node;
    }

    /* The text with every occurrence of `query` (lowercase) in <mark>. */
    function marked(text, query) {
      var span = el("span");
      var lower = text.toLowerCase(), at = 0;
      while (query) {
        var hit = lower.indexOf(query, at);
        if (hit < 0) break;
        span.appendChild(document.createTextNode(text.slice(at, hit)));
        span.appendChild(el("mark", text.slice(hit, hit + query.length)));
        at = hit + query.length;
      }
      span.appendChild(document.createTextNode(text.slice(at)));
      return span;
    }

    function showResults(s) {
      if (!resultsNode) return;
      resultsNode.textContent = "";
      resultsNode.hidden = !s.search;
      if (!s.search) return;
      var hits = [];
      data.texts.forEach(function (text, i) { if (text.toLowerCase().indexOf(s.search) >= 0) hits.push(i); });
      resultsNode.appendChild(el("p", hits.length + " of " + data.texts.length + " texts contain “" +
        controls.search.value.trim() + "”" + (hits.length ? " (only they are drawn)" : "") +
        (hits.length > SHOWN ? "; the first " + SHOWN + ":" : hits.length ? ":" : ".")));
      var list = el("ol");
      hits.slice(0, SHOWN).forEach(function (i) {
        var item = el("li");
        item.appendChild(marked(data.texts[i], s.search));
        item.appendChild(document.createTextNode(" [" + data.label_names[data.labels[i]] + ", " +
          data.split_names[data.splits[i]] + ", row " + i + "]"));
        list.appendChild(item);
      });
      if (hits.length) resultsNode.appendChild(list);
    }

    /* The probe's held-out prediction of `row` at the selection, or null (not evaluated). */
    function prediction(s, row) {
      var layers = (data.predicted || {})[s.pooling];
      var at = (data.evaluated || []).indexOf(row);
      if (!layers || !layers[s.layer] || at < 0 || s.checkpoint !== last) return null;
      var code = layers[s.layer][at];
      return code >= 0 ? data.label_names[code] : null;
    }

    function showPoint(row) {
      if (!detailsNode) return;
      var s = selection();
      detailsNode.textContent = "";
      detailsNode.setAttribute("data-row", String(row));
      detailsNode.appendChild(el("p", data.texts[row], "example-text"));
      var list = el("dl");
      function fact(name, value) { list.appendChild(el("dt", name)); list.appendChild(el("dd", value)); }
      fact("row", String(row));
      fact("label", data.label_names[data.labels[row]]);
      fact("split", data.split_names[data.splits[row]]);
      var guess = prediction(s, row);
      var truth = data.label_names[data.labels[row]];
      fact("probe at layer " + s.layer, guess === null ?
        "not predicted: the probe is scored on held-out texts" + (several ? " of " + data.checkpoints[last] : "") + " only" :
        guess + (guess === truth ? " (correct)" : " (wrong: true label " + truth + ")"));
      var nb = data.neighbours || {};
      var rows = nb.layers && nb.layers[s.layer] ? nb.layers[s.layer][row] : null;
      var dd = el("dd");
      if (rows) {
        var items = el("ol");
        rows.forEach(function (other) {
          var item = el("li");
          var button = el("button", data.texts[other], "link-button");
          button.type = "button";
          button.setAttribute("data-row", String(other));
          button.addEventListener("click", function () { showPoint(other); });
          item.appendChild(button);
          item.appendChild(document.createTextNode(" [" + data.label_names[data.labels[other]] + "]"));
          items.appendChild(item);
        });
        dd.appendChild(items);
      } else {
        dd.textContent = "not stored for this pooling";
      }
      list.appendChild(el("dt", "nearest texts (cosine, " + (nb.pooling || "?") + " pooling, layer " + s.layer + ")"));
      list.appendChild(dd);
      detailsNode.appendChild(list);
      var example = (data.showcase || []).indexOf(row);
      if (example >= 0) {
        var links = el("p", "Showcase example " + (example + 1) + ": ");
        [["attention.html", "its attention"], ["attributions.html", "its attributions"]].forEach(function (pair, i) {
          var a = el("a", pair[1]);
          a.href = pair[0] + "#example=" + example;
          a.className = "showcase-link";
          if (i) links.appendChild(document.createTextNode(" · "));
          links.appendChild(a);
        });
        detailsNode.appendChild(links);
      }
    }

    if (charts.map) {
      window.Atlas.onMount(charts.map.id, function (view) {
        view.addEventListener("click", function (event, item) {
          var d = item && item.datum;
          if (d && d.row !== undefined && d.text !== undefined) showPoint(d.row);
        });
      });
    }

    var first = selection();
    var rows = mapRows(first);
    if (charts.map) {
      specs[charts.map.id].datasets.points = rows.points;
      specs[charts.map.id].datasets.extent = rows.extent;
    }
    if (charts.cka) specs[charts.cka.id].datasets.cka = ckaRows(first);
    if (charts.tokens) specs[charts.tokens.id].datasets.tokens = tokenRows(first);
    ["separability", "silhouette"].forEach(function (key) {
      if (charts[key]) specs[charts[key].id].datasets.selected = [{ layer: first.layer }];
    });
    describe(first);
    showResults(first);

    function swap(element, datasets) {
      var view = element && window.Atlas.views[element.id];
      if (!view) return Promise.resolve();
      Object.keys(datasets).forEach(function (name) { view.data(name, datasets[name]); });
      return view.runAsync();
    }

    function update() {
      var s = selection();
      var r = mapRows(s);
      Promise.all([
        swap(charts.map, { points: r.points, extent: r.extent }),
        swap(charts.cka, { cka: ckaRows(s) }),
        swap(charts.tokens, { tokens: tokenRows(s) }),
        swap(charts.separability, { selected: [{ layer: s.layer }] }),
        swap(charts.silhouette, { selected: [{ layer: s.layer }] }),
      ]).then(function () { describe(s); showResults(s); });
    }

    Object.keys(controls).forEach(function (key) {
      if (!controls[key]) return;
      /* the search box follows typing only: its change on blur would redraw under a click */
      if (key !== "search") controls[key].addEventListener("change", update);
      if (key === "checkpoint" || key === "search") controls[key].addEventListener("input", update);
    });
  });
})();
