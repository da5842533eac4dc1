/* Activations page: quantile bands, histograms and dimension profiles follow the selectors. */
(function () {
  "use strict";
  var Atlas = window.Atlas;

  function histogramRows(bins) {
    return (bins || []).map(function (b) { return { start: b[0], end: b[1], fraction: b[2] }; });
  }

  function profileRows(layer) {
    if (!layer) return [];
    return layer.dims.map(function (dim, i) {
      return { dim: dim, max_abs: layer.max[i], ratio: layer.ratio[i], flagged: layer.flagged[i], cut: layer.cut };
    });
  }

  Atlas.register(function (specs) {
    var data = Atlas.readJson("activations-data");
    if (!data) return;
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
  });
})();
