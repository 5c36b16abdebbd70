// The console's only script: the live tail. It receives events as
// server-sent events and adds them as rows, setting text only (never HTML),
// so nothing in an event can run.
"use strict";

(function () {
  const table = document.getElementById("tail");
  if (!table) {
    return;
  }
  const rows = document.getElementById("tail-rows");
  const status = document.getElementById("tail-status");
  const maxRows = 500;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function cell(tr, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    tr.appendChild(td);
    return td;
  }

  function linkCell(tr, text, href, className) {
    const td = cell(tr, "", className);
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  }

  let count = 0;
  const source = new EventSource(table.dataset.source);
  source.addEventListener("ready", function () {
    setStatus("live", "live: new events appear at the top");
  });
  source.addEventListener("event", function (msg) {
    const ev = JSON.parse(msg.data);
    const tr = document.createElement("tr");
    tr.className = "tail-row";
    linkCell(tr, ev.stream, "/stream?id=" + encodeURIComponent(ev.stream));
    linkCell(tr, String(ev.version), ev.link, "num");
    cell(tr, ev.position, "num");
    cell(tr, ev.type);
    cell(tr, ev.recorded_at, "time");
    cell(tr, ev.preview, "data");
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > maxRows) {
      rows.removeChild(rows.lastChild);
    }
    count++;
    setStatus("live", "live: " + count + (count === 1 ? " event" : " events") + " so far");
  });
  source.addEventListener("failed", function (msg) {
    setStatus("failed", "failed: " + JSON.parse(msg.data).error);
    source.close();
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CONNECTING) {
      setStatus("connecting", "reconnecting…");
    }
  };
})();
