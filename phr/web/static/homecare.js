// The station board (/homecare/station): live through server-sent events. When the
// stream says something changed, the board's table is fetched again and swapped in;
// once a minute it is refreshed anyway so that the waiting times move on.
(function () {
  "use strict";
  var board = document.getElementById("hc-board");
  if (!board || !window.EventSource || !window.fetch) {
    return;
  }
  var fragment = board.getAttribute("data-fragment");
  var busy = false;

  function refresh() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(fragment, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok || r.redirected) {
          throw new Error("board " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var table = doc.getElementById("hc-board-table");
        var current = document.getElementById("hc-board-table");
        if (table && current) {
          current.replaceWith(document.importNode(table, true));
        }
        board.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }

  // The version the page was rendered at; every stream (the browser reconnects after
  // each one ends) starts by telling the current version, so nothing is missed between.
  var version = board.getAttribute("data-version");
  var source = new EventSource(board.getAttribute("data-events"));
  source.addEventListener("change", function (event) {
    board.setAttribute("data-live", "yes");
    if (event.data !== version) {
      version = event.data;
      refresh();
    }
  });
  window.setInterval(refresh, 60000);
})();
