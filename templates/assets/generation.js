/* Attention page, time steps: a slider over the greedy continuation of the selected example.
 * Data (generation-data): {seq2seq, n_layers, n_heads, steps, kinds: ["self"(, "cross")],
 * examples: [{prompt: [tokens], base: [tokens before the first generated one], generated:
 * [tokens], top: [step][rank] = [token, prob], lens: [step][layer][rank] = [token, prob],
 * weights: {kind: base64 uint16 thousandths [step, layer, head, key]}}]}.
 * Step s shows the prefix base + generated[:s]; its last token is the one fed at that step.
 * The example, layer and head come from the page's selectors (attention.js); the step is the
 * range input #select-step, kept in the URL fragment as `step=S` (other keys are kept). */
(function () {
  "use strict";
  var Atlas = window.Atlas;
  var SCALE = 1000;
  var CHARTS = {
    self: "chart-generation-attention",
    cross: "chart-generation-cross",
    predictions: "chart-generation-predictions",
    lens: "chart-generation-lens",
  };

  function tokenLabel(index, token) {
    return ("000" + index).slice(-4) + " " + token;
  }

  function readStep() {
    var match = /(?:^|&)step=(\d+)(?:&|$)/.exec(window.location.hash.replace(/^#/, ""));
    return match ? +match[1] : null;
  }

  function writeStep(step) {
    var parts = window.location.hash.replace(/^#/, "").split("&").filter(function (part) {
      return part && part.split("=")[0] !== "step";
    });
    parts.push("step=" + step);
    var url = window.location.href.split("#")[0] + "#" + parts.join("&");
    try {
      window.history.replaceState(window.history.state, "", url);
    } catch (e) {
      window.location.replace(url);  /* some file:// setups refuse replaceState */
    }
  }

  /* Rows of a step's attention chart (as attention_rows in pages/generation.py). */
  function attentionRows(data, item, kind, s) {
    if (!item.decoded) item.decoded = {};
    if (!item.decoded[kind]) {
      var bytes = Atlas.decodeBase64(item.weights[kind]);
      item.decoded[kind] = new Uint16Array(bytes.buffer);
    }
    var weights = item.decoded[kind];
    var keys = kind === "cross" ? item.prompt : item.base.concat(item.generated.slice(0, s.step));
    var width = weights.length / (item.generated.length * data.n_layers * data.n_heads);
    var offset = ((s.step * data.n_layers + s.layer) * data.n_heads + s.head) * width;
    return keys.map(function (key, i) {
      var kindName = kind === "cross" ? "encoder token" : (i === keys.length - 1 ? "fed token" : "earlier token");
      return { key: tokenLabel(i, key), weight: Math.round(weights[offset + i]) / SCALE, new: kindName };
    });
  }

  function predictionRows(item, step) {
    var chosen = item.generated[step];
    return item.top[step].map(function (pair, rank) {
      return { rank: rank, label: (rank + 1) + ". " + pair[0], prob: pair[1],
               chosen: rank === 0 && pair[0] === chosen ? "greedy choice" : "other" };
    });
  }

  function lensRows(item, step) {
    var rows = [];
    item.lens[step].forEach(function (ranked, layer) {
      ranked.forEach(function (pair, rank) {
        rows.push({ layer: layer, rank: rank, token: pair[0], prob: pair[1] });
      });
    });
    return rows;
  }

  Atlas.register(function (specs) {
    var data = Atlas.readJson("generation-data");
    var slider = document.getElementById("select-step");
    if (!data || !slider || !data.examples.length) return;
    var selects = {
      example: document.getElementById("select-example"),
      layer: document.getElementById("select-layer"),
      head: document.getElementById("select-head"),
    };
    var stepText = document.getElementById("step-text");
    var prefixNode = document.getElementById("generation-prefix");

    function selection() {
      var example = Math.min(+selects.example.value || 0, data.examples.length - 1);
      var item = data.examples[example];
      slider.max = String(item.generated.length - 1);
      var step = Math.max(0, Math.min(+slider.value || 0, item.generated.length - 1));
      slider.value = String(step);
      return {
        example: example, step: step,
        layer: Math.min(+selects.layer.value || 0, data.n_layers - 1),
        head: Math.min(+selects.head.value || 0, data.n_heads - 1),
      };
    }

    function rowsFor(id, s) {
      var item = data.examples[s.example];
      if (id === CHARTS.predictions) return predictionRows(item, s.step);
      if (id === CHARTS.lens) return lensRows(item, s.step);
      return attentionRows(data, item, id === CHARTS.cross ? "cross" : "self", s);
    }

    function describe(s) {
      var item = data.examples[s.example];
      var fed = item.base.concat(item.generated.slice(0, s.step));
      stepText.textContent = "step " + s.step + " of " + (item.generated.length - 1) +
        ": fed “" + fed[fed.length - 1] + "”, greedy next “" + item.generated[s.step] + "”";
      prefixNode.textContent = "Prefix: " + fed.join(" ") + "  ▸  " + item.generated[s.step];
      Object.keys(CHARTS).forEach(function (key) {
        var element = document.getElementById(CHARTS[key]);
        if (element) {
          element.setAttribute("data-selection", "example " + s.example + ", step " + s.step +
            ", layer " + s.layer + ", head " + s.head);
        }
      });
    }

    var initial = readStep();
    if (initial !== null) slider.value = String(initial);
    var first = selection();
    Object.keys(CHARTS).forEach(function (key) {
      var id = CHARTS[key];
      if (specs[id]) specs[id].datasets.rows = rowsFor(id, first);
    });
    describe(first);

    function update(options) {
      var s = selection();
      if (!(options && options.keepFragment)) writeStep(s.step);
      var pending = [];
      Object.keys(CHARTS).forEach(function (key) {
        var id = CHARTS[key];
        var view = Atlas.views[id];  /* read each time: a theme change replaces the views */
        if (view) pending.push(view.data("rows", rowsFor(id, s)).runAsync());
      });
      return Promise.all(pending).then(function () { describe(s); });
    }
    slider.addEventListener("input", function () { update(); });
    Object.keys(selects).forEach(function (key) {
      if (selects[key]) selects[key].addEventListener("change", function () { update(); });
    });
    window.addEventListener("hashchange", function () {
      var step = readStep();
      if (step !== null) slider.value = String(step);
      update({ keepFragment: true });
    });
  });
})();
