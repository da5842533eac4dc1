/* Permalinks: every control's state lives in the URL fragment (page.html#example=3&layer=2).
 *
 * A control is registered with a state key, with no page code:
 *   - every <select> and <input> with an id inside a `.controls` element; its key is its
 *     `data-state` attribute, else its id without a leading "select-";
 *   - any element with a `data-state` attribute: a <select>/<input> (wherever it is), or a group
 *     (e.g. a <fieldset>) whose checkboxes form one key: the checked values joined by ",", or
 *     "none";
 *   - `data-state=""` opts a control out.
 * Values: a select's or a text/range input's value; a checkbox "1" (checked) or "0".
 *
 * The fragment holds the page's state over its defaults: a key that is absent means the
 * control's value in the page as built. Keys the page does not know are kept (a link can name
 * a chart, `chart=ID`, which is scrolled into view on load). On load (after the charts are first
 * drawn) and on every hashchange, each control that differs from the fragment is set, in
 * document order, and gets the `change` (and, for inputs, `input`) event its page script
 * listens to, so dependent option lists refresh before the next control is set.
 * Every user change rewrites the fragment (history.replaceState; location.replace where
 * file:// refuses it). Page scripts that change controls without an event call
 * Atlas.saveState().
 *
 * Linked views: Atlas.linkOnClick(chartId, target) opens target(datum) -> {page, params} (or
 * null: no link) when a mark of the chart is clicked; Atlas.link(page, params) is that URL.
 * Links to a head carry the showcase example last chosen on the attention or attributions
 * page (Atlas.lastExample, kept for the browser tab in sessionStorage).
 *
 * "Copy link" buttons (`button.copy-link`, one per chart and one per page) copy the page's
 * permalink; a chart's button adds `chart=ID`. window.__atlasReady waits for the fragment to
 * be applied (Atlas.settle: no chart being re-embedded or re-run). */
(function () {
  "use strict";
  var Atlas = window.Atlas;
  var CHART = "chart";
  var registered = [];
  var applying = false;

  /* --- Controls -------------------------------------------------------------------------- */

  function keyOf(element) {
    var explicit = element.getAttribute("data-state");
    if (explicit !== null) return explicit;
    return (element.id || "").replace(/^select-/, "");
  }

  function boxes(group) {
    return Array.prototype.slice.call(group.querySelectorAll("input[type=checkbox]"));
  }

  function kindOf(element) {
    var tag = element.tagName.toLowerCase();
    if (tag === "select") return "select";
    if (tag !== "input") return "group";
    return element.type === "checkbox" ? "check" : "input";
  }

  function read(control) {
    var element = control.element;
    if (control.kind === "check") return element.checked ? "1" : "0";
    if (control.kind === "group") {
      var on = boxes(element).filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      return on.length ? on.join(",") : "none";
    }
    return element.value;
  }

  /* Set a control to `value` if the value is one it can hold; return whether it changed. */
  function write(control, value) {
    var element = control.element;
    if (read(control) === value) return false;
    if (control.kind === "select") {
      var ok = Array.prototype.some.call(element.options, function (o) { return o.value === value; });
      if (!ok) return false;
      element.value = value;
    } else if (control.kind === "check") {
      if (value !== "1" && value !== "0") return false;
      element.checked = value === "1";
    } else if (control.kind === "group") {
      var wanted = value === "none" ? [] : value.split(",");
      boxes(element).forEach(function (b) { b.checked = wanted.indexOf(b.value) >= 0; });
    } else {
      if (element.type === "range" || element.type === "number") {
        var n = Number(value);
        if (value === "" || isNaN(n) || (element.min !== "" && n < +element.min) ||
            (element.max !== "" && n > +element.max)) return false;
      }
      element.value = value;
    }
    return read(control) === value;
  }

  function fire(element, name) {
    var event;
    try {
      event = new Event(name, { bubbles: true });
    } catch (e) {
      event = document.createEvent("Event");
      event.initEvent(name, true, false);
    }
    element.dispatchEvent(event);
  }

  function notify(control) {
    var targets = control.kind === "group" ? boxes(control.element).slice(-1) : [control.element];
    targets.forEach(function (target) {
      if (control.kind === "input") fire(target, "input");
      fire(target, "change");
    });
  }

  function register() {
    var found = [];
    var seen = {};
    function add(element) {
      if (found.some(function (c) { return c.element === element; })) return;
      var key = keyOf(element);
      if (!key || key === CHART || seen[key]) return;
      var group = element.parentNode && element.parentNode.closest &&
        element.parentNode.closest("[data-state]");
      if (group && kindOf(group) === "group" && group !== element) return;  /* part of a group */
      seen[key] = true;
      var control = { key: key, element: element, kind: kindOf(element) };
      control.initial = read(control);
      found.push(control);
    }
    var all = document.querySelectorAll(
      "[data-state], .controls select[id], .controls input[id]");
    Array.prototype.forEach.call(all, add);
    return found;
  }

  /* --- Fragment -------------------------------------------------------------------------- */

  function parse(hash) {
    var params = {};
    var text = (hash || "").replace(/^#/, "");
    if (!text) return params;
    text.split("&").forEach(function (part) {
      if (!part) return;
      var at = part.indexOf("=");
      try {
        params[decodeURIComponent(at < 0 ? part : part.slice(0, at))] =
          at < 0 ? "" : decodeURIComponent(part.slice(at + 1));
      } catch (e) { /* malformed escape: ignore this part */ }
    });
    return params;
  }

  function format(params) {
    return Object.keys(params).map(function (key) {
      return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]).replace(/%2C/g, ",");
    }).join("&");
  }

  /* The page's current state: every control not at its default, plus the kept unknown keys. */
  function current(extra) {
    var params = parse(window.location.hash);
    registered.forEach(function (c) {
      delete params[c.key];
      var value = read(c);
      if (value !== c.initial) params[c.key] = value;
    });
    delete params[CHART];
    Object.keys(extra || {}).forEach(function (key) { params[key] = extra[key]; });
    return params;
  }

  var EXAMPLE_KEY = "model-atlas-example";

  function remember() {
    registered.forEach(function (c) {
      if (c.key !== "example") return;
      try { window.sessionStorage.setItem(EXAMPLE_KEY, read(c)); } catch (e) { /* storage off */ }
    });
  }

  /* The showcase example last chosen in this tab (a string), or null. */
  Atlas.lastExample = function () {
    try { return window.sessionStorage.getItem(EXAMPLE_KEY); } catch (e) { return null; }
  };

  Atlas.link = function (page, params) {
    var text = format(params || {});
    return page + (text ? "#" + text : "");
  };

  Atlas.linkOnClick = function (chartId, target) {
    Atlas.onMount(chartId, function (view) {
      view.addEventListener("click", function (event, item) {
        var found = item && item.datum ? target(item.datum) : null;
        if (found) window.location.href = Atlas.link(found.page, found.params);
      });
    });
  };

  /* Attention-page kind index of a head-importance row's kind (encoder-decoders). */
  var KINDS = { "encoder self-attention": 0, "decoder self-attention": 1, "cross-attention": 2 };

  /* A head's attention view (datum: layer, head, optional kind), for the last example. */
  Atlas.headLink = function (datum) {
    if (datum.layer === undefined || datum.head === undefined) return null;
    var params = {};
    if (datum.kind !== undefined && KINDS[datum.kind] !== undefined) params.kind = KINDS[datum.kind];
    params.layer = datum.layer;
    params.head = datum.head;
    var example = Atlas.lastExample();
    if (example !== null) params.example = example;
    return { page: "attention.html", params: params };
  };

  function save() {
    if (applying) return;
    remember();
    var text = format(current());
    if (text === window.location.hash.replace(/^#/, "")) return;
    var url = window.location.href.split("#")[0] + (text ? "#" + text : "");
    if (!text && !window.location.hash) return;
    try {
      window.history.replaceState(window.history.state, "", url);
    } catch (e) {
      window.location.replace(url);  /* some file:// setups refuse replaceState */
    }
  }

  /* Set every control from the fragment (absent keys: the page's defaults), firing events. */
  function apply() {
    var params = parse(window.location.hash);
    applying = true;
    try {
      registered.forEach(function (c) {
        var wanted = Object.prototype.hasOwnProperty.call(params, c.key) ? params[c.key] : c.initial;
        if (write(c, wanted)) notify(c);
      });
    } finally {
      applying = false;
    }
    remember();
  }

  /* --- Links ----------------------------------------------------------------------------- */

  /* The permalink of the page's current view; with `chart`, naming that chart. */
  function permalink(chart) {
    var text = format(current(chart ? { chart: chart } : null));
    return window.location.href.split("#")[0] + (text ? "#" + text : "");
  }

  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () {
        return legacyCopy(text);
      });
    }
    return Promise.resolve(legacyCopy(text));
  }

  function legacyCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function wireButtons() {
    var buttons = document.querySelectorAll("button.copy-link");
    Array.prototype.forEach.call(buttons, function (button) {
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        var link = permalink(button.getAttribute("data-chart"));
        button.setAttribute("data-link", link);
        var field = button.parentNode.querySelector(".copied-link");
        copyText(link).then(function (ok) {
          button.textContent = ok ? "Link copied" : "Copy the link below";
          if (field) {
            field.value = link;
            field.hidden = false;
            if (!ok) field.select();
          }
          window.setTimeout(function () { button.textContent = label; }, 2000);
        });
      });
    });
  }

  function showNamedChart() {
    var id = parse(window.location.hash)[CHART];
    var figure = id && document.getElementById("figure-" + id);
    if (!figure) return;
    figure.classList.add("linked");
    figure.scrollIntoView({ block: "start" });
  }

  /* --- Settling -------------------------------------------------------------------------- */

  function tick() { return new Promise(function (resolve) { window.setTimeout(resolve, 0); }); }

  /* Resolve once no chart is being re-embedded and every view has run (twice, for updates
   * that chain one change on another). */
  Atlas.settle = function () {
    function round() {
      return Atlas.embedding().then(function () {
        return Promise.all(Object.keys(Atlas.views).map(function (id) { return Atlas.views[id].runAsync(); }));
      }).then(tick);
    }
    return round().then(round);
  };

  Atlas.saveState = save;
  Atlas.permalink = permalink;
  Atlas.stateControls = function () {
    return registered.map(function (c) {
      return { key: c.key, kind: c.kind, initial: c.initial, value: read(c), id: c.element.id };
    });
  };
  Atlas.parseFragment = parse;

  Atlas.register(function () {
    registered = register();
    document.addEventListener("change", function (event) {
      if (registered.some(function (c) { return c.element === event.target || c.element.contains(event.target); })) save();
    });
    document.addEventListener("input", function (event) {
      if (registered.some(function (c) { return c.kind === "input" && c.element === event.target; })) save();
    });
    window.addEventListener("hashchange", function () { apply(); });
    wireButtons();
  });

  Atlas.beforeReady(function () {
    apply();
    return Atlas.settle().then(showNamedChart);
  });
})();
