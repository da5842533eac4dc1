// Live reload for `modelatlas serve` (never part of a built site: the server adds it to the
// HTML it sends). The server answers wait.js?since=G once the site has been rebuilt past
// generation G (or after a timeout) with a call to window.__modelatlasLive(current generation);
// a script element, not fetch or EventSource, asks, so the pages' Content-Security-Policy
// (script-src 'self'; connect-src 'none') holds unchanged.
(function () {
  "use strict";
  var own = new URL(document.currentScript.src);
  var known = own.searchParams.get("g");
  var retry = 0;

  function ask(delay) {
    window.setTimeout(function () {
      var script = document.createElement("script");
      script.src = new URL("wait.js?since=" + known + "&t=" + Date.now(), own).href;
      script.onload = function () {
        script.remove();
      };
      script.onerror = function () {
        script.remove();
        retry = Math.min(retry + 1, 5);
        ask(1000 * retry); // the server is restarting or stopped: ask again, slower
      };
      document.head.appendChild(script);
    }, delay);
  }

  window.__modelatlasLive = function (generation) {
    retry = 0;
    if (String(generation) !== known) {
      window.location.reload(); // keeps the URL fragment: the view's state
      return;
    }
    ask(0);
  };
  // A request held open before the load event would hold that event back: ask after it.
  if (document.readyState === "complete") {
    ask(0);
  } else {
    window.addEventListener("load", function () {
      ask(0);
    });
  }
})();
