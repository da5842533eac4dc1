/* Attributions page: colour the example's tokens by score, swap chart data on selection. */
(function () {
  "use strict";

  function label(position, token) {
    return ("000" + position).slice(-4) + " " + token;
  }

  function colour(score, scale) {
    var t = scale > 0 ? Math.max(-1, Math.min(1, score / scale)) : 0;
    var alpha = Math.abs(t) * 0.75;
    return t >= 0 ? "rgba(202, 0, 32, " + alpha + ")" : "rgba(5, 113, 176, " + alpha + ")";
  }

  window.Atlas.register(function (specs) {
    ["chart-head-ablation", "chart-head-gradient", "chart-head-agreement"].forEach(function (id) {
      window.Atlas.linkOnClick(id, window.Atlas.headLink);
    });
    var data = window.Atlas.readJson("attribution-data");
    if (!data) return;
    var exampleSelect = document.getElementById("select-attr-example");
    var methodSelect = document.getElementById("select-attr-method");
    var textNode = document.getElementById("attr-text");
    var factsNode = document.getElementById("attr-facts");
    var tableBody = document.querySelector("#attr-table tbody");
    var scoresChart = document.getElementById("chart-token-scores");
    var lensChart = document.getElementById("chart-lens");

    function selection() {
      return { example: +exampleSelect.value, method: methodSelect.value };
    }
    function scoreRows(s) {
      var item = data.examples[s.example];
      return item.tokens.map(function (token, i) {
        return { token: label(item.positions[i], token), method: s.method, score: item.scores[s.method][i] };
      });
    }
    function lensRows(s) {
      return data.lens[String(s.example)] || [];
    }
    function describe(s) {
      var item = data.examples[s.example];
      var scores = item.scores[s.method];
      var scale = Math.max.apply(null, scores.map(Math.abs));
      textNode.textContent = "";
      item.tokens.forEach(function (token, i) {
        var span = document.createElement("span");
        span.className = "attr-token";
        span.textContent = token;
        span.title = token + ": " + scores[i].toFixed(4);
        span.style.backgroundColor = colour(scores[i], scale);
        textNode.appendChild(span);
        textNode.appendChild(document.createTextNode(" "));
      });
      factsNode.textContent = (item.label ? "[" + item.label + "] " : "") + item.text +
        (item.target_text !== undefined ? "  →  " + item.target_text : "") +
        "  —  objective " + item.objective.toFixed(4) + ", IG completeness error " +
        (100 * item.ig_error).toPrecision(3) + "%";
      tableBody.textContent = "";
      item.tokens.forEach(function (token, i) {
        var tr = document.createElement("tr");
        var cells = [String(item.positions[i]), token].concat(data.methods.map(function (m) {
          return item.scores[m.key][i].toFixed(4);
        }));
        cells.forEach(function (text, c) {
          var cell = document.createElement(c === 1 ? "th" : "td");
          if (c === 1) cell.scope = "row";
          cell.textContent = text;
          tr.appendChild(cell);
        });
        tableBody.appendChild(tr);
      });
      if (scoresChart) scoresChart.setAttribute("data-selection", s.example + "/" + s.method);
    }

    var first = selection();
    if (scoresChart) specs[scoresChart.id].datasets.scores = scoreRows(first);
    if (lensChart) specs[lensChart.id].datasets.lens = lensRows(first);
    describe(first);

    function update() {
      var s = selection();
      var runs = [];
      var views = window.Atlas.views;
      if (scoresChart && views[scoresChart.id]) {
        views[scoresChart.id].data("scores", scoreRows(s));
        runs.push(views[scoresChart.id].runAsync());
      }
      if (lensChart && views[lensChart.id]) {
        views[lensChart.id].data("lens", lensRows(s));
        runs.push(views[lensChart.id].runAsync());
      }
      Promise.all(runs).then(function () { describe(s); });
    }
    exampleSelect.addEventListener("change", update);
    methodSelect.addEventListener("change", update);
  });
})();
