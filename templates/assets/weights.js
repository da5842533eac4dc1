/* Weights page: build each selector-driven chart's rows from the compact `weights-data` block. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function histogramRows(group) {
    var rows = [];
    if (!group) return rows;
    var edges = group.edges;
    group.series.forEach(function (series) {
      series.f.forEach(function (fraction, b) {
        rows.push({ label: series.label, order: series.order, x: (edges[b] + edges[b + 1]) / 2,
          start: edges[b], end: edges[b + 1], fraction: fraction });
      });
    });
    return rows;
  }

  function span(start, size, total) {
    var end = Math.min(start + size, total) - 1;
    return end > start ? start + "–" + end : String(start);
  }

  /* Cells span the original rows [r0, r1) and columns [c0, c1) of the block they pool. */
  /* Cells of one matrix: its packed values are the data file `entry.file` (loaded first). */
  function heatmapRows(entry) {
    var rows = [];
    var packed = entry && Atlas.dataNow(entry.file);
    if (!packed) return rows;
    var levels = new Int8Array(Atlas.decodeBase64(packed).buffer);
    var h = entry.size[0], w = entry.size[1], br = entry.block[0], bc = entry.block[1];
    var peak = 0;  /* the colour: w / max |w| = level / max |level| */
    for (var i = 0; i < levels.length; i++) peak = Math.max(peak, Math.abs(levels[i]));
    for (var r = 0; r < h; r++) {
      for (var c = 0; c < w; c++) {
        var value = levels[r * w + c] / 127 * entry.scale;
        var rowSpan = span(r * br, br, entry.shape[0]), colSpan = span(c * bc, bc, entry.shape[1]);
        rows.push({ kind: "cell", r0: r * br, r1: Math.min((r + 1) * br, entry.shape[0]),
          c0: c * bc, c1: Math.min((c + 1) * bc, entry.shape[1]),
          w: value, relative: peak > 0 ? levels[r * w + c] / peak : 0, rows: rowSpan, cols: colSpan,
          tip: { rows: rowSpan, columns: colSpan, "weight (block max |w|, signed)": Atlas.format4g(value) } });
      }
    }
    return rows.concat(boundaryRows(entry.bands));
  }

  /* Rules where one head's band of the matrix ends and the next begins (mirrors boundary_rows). */
  function boundaryRows(bands) {
    if (!bands) return [];
    var unit = bands.axis === "c" ? "columns" : "rows";
    var rows = bands.at.map(function (at) {
      return { kind: "boundary", axis: bands.axis, at: at, major: false, what: "between heads (" + unit + ")" };
    });
    return rows.concat(bands.major.map(function (at) {
      return { kind: "boundary", axis: bands.axis, at: at, major: true, what: "between query, key and value" };
    }));
  }

  /* Pixel size of a pooled matrix's heatmap (mirrors heatmap_size in charts/weights.py). */
  function heatmapSize(entry) {
    return [Math.max(5 * entry.size[1], 60), Math.max(5 * entry.size[0], 30)];
  }

  /* Singular values of one matrix and its heads: the data file `entry.file` (loaded first). */
  function spectrumRows(entry) {
    var rows = [];
    entry = entry && Atlas.dataNow(entry.file);
    if (!entry) return rows;
    entry.whole.forEach(function (p) {
      rows.push({ series: "whole matrix", whole: true, head: null, rank: p[0], sigma: p[1] });
    });
    entry.heads.forEach(function (head) {
      head.points.forEach(function (p) {
        rows.push({ series: head.series, whole: false, head: head.head, rank: p[0], sigma: p[1] });
      });
    });
    return rows.filter(function (row) { return row.sigma > 0; });
  }

  function embeddingRows(embedding, method) {
    var coords = embedding[method];
    return embedding.tokens.map(function (token, i) {
      return { x: coords[2 * i], y: coords[2 * i + 1], token: token, id: embedding.ids[i],
        count: embedding.counts[i], source: embedding.counts[i] > 0 ? "in corpus" : "not in corpus" };
    });
  }

  Atlas.register(function (specs) {
    var data = Atlas.readJson("weights-data");
    if (!data) return;
    var block = document.getElementById("select-block");
    var matrix = document.getElementById("select-matrix");
    var description = document.getElementById("matrix-description");
    function describeMatrix() {
      var entry = data.heatmaps[matrix.value];
      if (!entry || !description) return;
      var pooled = entry.block[0] > 1 || entry.block[1] > 1;
      var bands = entry.bands ? "; lines between its " + (entry.bands.at.length + entry.bands.major.length + 1) +
        " head bands (" + (entry.bands.axis === "c" ? "columns" : "rows") + ")" : "";
      description.textContent = matrix.value + ": " + entry.shape.join(" × ") +
        (pooled ? ", shown as " + entry.size.join(" × ") + " blocks of " + entry.block.join(" × ") +
          " (block max |w|, signed)" : ", every entry shown") + bands + "; max |w| = " +
        entry.scale.toPrecision(4) + ".";
    }
    /* The heatmap's axes count original rows and columns, so its size follows the matrix:
     * set before mounting, and (before the data swap below runs the view) on every change. */
    var heatmapId = "chart-weights-heatmap";
    function resizeHeatmap() {
      var entry = data.heatmaps[matrix.value], view = Atlas.views[heatmapId];
      if (!entry || !view) return;
      var size = heatmapSize(entry);
      view.width(size[0]).height(size[1]);
    }
    if (matrix && specs[heatmapId] && data.heatmaps[matrix.value]) {
      var first = heatmapSize(data.heatmaps[matrix.value]);
      specs[heatmapId].width = first[0];
      specs[heatmapId].height = first[1];
    }
    if (block && matrix) {
      /* Registered before the charts' listeners: the matrix list follows the block first. */
      block.addEventListener("change", function () {
        Atlas.setOptions(matrix, data.matrices[block.value] || []);
      });
      matrix.addEventListener("change", describeMatrix);
      block.addEventListener("change", describeMatrix);
      matrix.addEventListener("change", resizeHeatmap);
      block.addEventListener("change", resizeHeatmap);
      describeMatrix();
    }
    Atlas.bindSelects(specs, "chart-weights-histograms", ["select-hist-group"], function (v) {
      return histogramRows(data.histograms[v[0]]);
    });
    Atlas.bindSelects(specs, "chart-weights-bands", ["select-band-group"], function (v) {
      return data.bands[v[0]] || [];
    });
    Atlas.bindSelects(specs, "chart-weights-heads", ["select-head-role"], function (v) {
      return data.heads[v[0]] || [];
    });
    var heatmap = Atlas.bindSelects(specs, "chart-weights-heatmap", ["select-block", "select-matrix"], function (v) {
      return heatmapRows(data.heatmaps[v[1]]);
    }, function (v) {
      return data.heatmaps[v[1]] ? [data.heatmaps[v[1]].file] : [];
    });
    var singular = Atlas.bindSelects(specs, "chart-weights-singular", ["select-block", "select-matrix"], function (v) {
      return spectrumRows(data.spectra[v[1]]);
    }, function (v) {
      return data.spectra[v[1]] ? [data.spectra[v[1]].file] : [];
    });
    Atlas.bindSelects(specs, "chart-weights-headmap", ["select-headmap-role"], function (v) {
      return data.headmap[v[0]] || [];
    });
    if (data.gradients) {
      ["cells", "ratios", "examples"].forEach(function (view) {
        var chartId = "chart-weights-grad-" + { cells: "heatmap", ratios: "ratios", examples: "examples" }[view];
        Atlas.bindSelects(specs, chartId, ["select-grad-checkpoint"], function (v) {
          return (data.gradients[v[0]] || {})[view] || [];
        });
      });
    }
    if (data.embedding) {
      Atlas.bindSelects(specs, "chart-weights-embedding", ["select-embedding-method"], function (v) {
        return embeddingRows(data.embedding, v[0]);
      });
    }
    if (data.output_embedding) {
      Atlas.bindSelects(specs, "chart-weights-output-embedding", ["select-output-method"], function (v) {
        return embeddingRows(data.output_embedding, v[0]);
      });
    }
    return Promise.all([heatmap, singular]);  /* both charts mount with their first files' rows */
  });
})();
