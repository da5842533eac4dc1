/* Activations page: quantile bands, histograms, dimension profiles and the MLP-neuron views
 * follow the selectors. Row builders mirror generator/render/pages/activations.py and
 * neuron_section.py. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function histogramRows(bins) {
    return (bins || []).map(function (b) { return { start: b[0], end: b[1], fraction: b[2] }; });
  }

  function profileRows(layer) {
    if (!layer) return [];
    return layer.dims.map(function (dim, i) {
      return {
        dim: dim, max_abs: layer.max[i], ratio: layer.ratio[i], flagged: layer.flagged[i],
        cut: layer.cut, excluded: layer.excluded,
      };
    });
  }

  function barRows(layer) {
    return (layer || []).map(function (n, i) {
      return { neuron: n[0], rank: i, max: n[1], mean: n[2], positive: n[3] };
    });
  }

  function pad4(n) { var s = String(n); while (s.length < 4) s = "0" + s; return s; }

  function heatmapRows(showcase, example, layer) {
    if (!showcase || example >= showcase.examples.length || layer < 0) return [];
    var ids = showcase.neurons[layer];
    var item = showcase.examples[example];
    var flat = (Atlas.dataNow("activations-neurons-" + layer) || [])[example];  /* a data file */
    if (!flat) return [];
    var rows = [];
    item.tokens.forEach(function (token, t) {
      ids.forEach(function (neuron, j) {
        rows.push({ position: t, token_label: pad4(t) + " " + token, neuron: neuron, rank: j, value: flat[t * ids.length + j] });
      });
    });
    return rows;
  }

  function showLayerTables(label) {
    var blocks = document.querySelectorAll(".neuron-layer");
    Array.prototype.forEach.call(blocks, function (block) {
      block.hidden = block.getAttribute("data-layer") !== label;
    });
  }

  function bindNeurons(specs, data) {
    var neurons = data.neurons;
    var layer = document.getElementById("select-neuron-layer");
    if (!neurons || !layer) return;
    layer.addEventListener("change", function () { showLayerTables(layer.value); });
    showLayerTables(layer.value);
    Atlas.bindSelects(specs, "chart-neurons-histogram", ["select-neuron-layer"], function (v) {
      return histogramRows((data.histograms.mlp || {})[v[0]]);
    });
    Atlas.bindSelects(specs, "chart-neurons-bars", ["select-neuron-layer"], function (v) {
      return barRows(neurons.bars[v[0]]);
    });
    /* Each layer's showcase values are a data file (activation_files.py), loaded when chosen. */
    return Atlas.bindSelects(specs, "chart-neurons-heatmap", ["select-neuron-example", "select-neuron-layer"], function (v) {
      return heatmapRows(neurons.showcase, Number(v[0]), neurons.layers.indexOf(v[1]));
    }, function (v) {
      var index = neurons.layers.indexOf(v[1]);
      return neurons.showcase && index >= 0 ? ["activations-neurons-" + index] : [];
    });
  }

  /* Rows of one dimension over one showcase example (mirrors first_rows in dimension_tokens.py). */
  function dimensionFile(dims, key) {
    for (var i = 0; i < dims.pairs.length; i++) if (dims.pairs[i][0] === key) return "activations-dimension-" + i;
    return null;
  }
  function dimensionRows(dims, key, example) {
    var file = dims && dimensionFile(dims, key);
    var all = file && Atlas.dataNow(file);
    if (!all || !all[example] || !dims.tokens[example]) return [];
    var values = all[example];
    return dims.tokens[example].map(function (token, i) {
      return { position: i, token_label: pad4(i) + " " + token, value: values[i] };
    });
  }

  /* "Per token" in the outlier table: choose that dimension below and bring its chart into view. */
  function bindDimensionLinks() {
    var select = document.getElementById("select-dim");
    if (!select) return;
    Array.prototype.forEach.call(document.querySelectorAll("button.dim-link"), function (button) {
      button.addEventListener("click", function () {
        select.value = button.getAttribute("data-dim");
        select.dispatchEvent(new Event("change", { bubbles: true }));
        var figure = document.getElementById("figure-activations-dimension");
        if (figure) figure.scrollIntoView({ block: "center" });
      });
    });
  }

  Atlas.register(function (specs) {
    var data = Atlas.readJson("activations-data");
    if (!data) return;
    /* Each dimension's values are a data file (activation_files.py), loaded when chosen. */
    var dimension = Atlas.bindSelects(specs, "chart-activations-dimension", ["select-dim", "select-dim-example"], function (v) {
      return dimensionRows(data.dimension_tokens, v[0], Number(v[1]));
    }, function (v) {
      var file = data.dimension_tokens && dimensionFile(data.dimension_tokens, v[0]);
      return file ? [file] : [];
    });
    bindDimensionLinks();
    var quantity = document.getElementById("select-act-quantity");
    var layer = document.getElementById("select-act-layer");
    if (quantity && layer) {
      /* Registered before the charts' listeners: the layer list follows the quantity first. */
      quantity.addEventListener("change", function () {
        var labels = data.layers[quantity.value] || [];
        Atlas.setOptions(layer, labels.map(function (label) { return [label, label]; }));
      });
    }
    Atlas.bindSelects(specs, "chart-activations-bands", ["select-act-quantity"], function (v) {
      return data.quantiles[v[0]] || [];
    });
    Atlas.bindSelects(specs, "chart-activations-histogram", ["select-act-quantity", "select-act-layer"], function (v) {
      return histogramRows((data.histograms[v[0]] || {})[v[1]]);
    });
    Atlas.bindSelects(specs, "chart-activations-profile", ["select-profile-layer"], function (v) {
      return profileRows(data.profile[v[0]]);
    });
    return Promise.all([dimension, bindNeurons(specs, data)]);
  });
})();
