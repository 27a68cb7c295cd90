// The live log: new entries arrive as Server-Sent Events, each a table row the server rendered
// (and escaped). Following is on while the page is scrolled to the top; scrolled down, new rows
// wait behind a "+N new" button, as in the terminal UI.
"use strict";
(function () {
  const follow = document.getElementById("follow");
  const rows = document.getElementById("rows");
  if (!follow || !rows || !window.EventSource) return;
  const waiting = [];
  const button = document.getElementById("new-rows");
  // The words come from the server's catalog, in the page's language.
  const label = [follow.dataset.follow, follow.dataset.paused, follow.dataset.fresh];
  const params = new URLSearchParams(follow.dataset.query || "");
  params.set("after", follow.dataset.latest || "0");
  if (follow.dataset.find) params.set("find", follow.dataset.find);
  const paused = () => window.scrollY > 80;
  // A flood must not grow the page without end: the newest KEEP rows stay, older ones are in
  // the log's pages; while paused, only the newest KEEP wait (the count says how many came).
  const KEEP = 500;
  let fresh = 0;
  function show(html) {
    const body = document.createElement("tbody");
    body.innerHTML = html;
    const row = body.firstElementChild;
    if (row) rows.insertBefore(row, rows.firstChild);
    while (rows.children.length > KEEP) rows.lastElementChild.remove();
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
  }
  function flush() {
    while (waiting.length) show(waiting.shift());
    fresh = 0;
    button.hidden = true;
    follow.textContent = label[0];
  }
  button.addEventListener("click", () => { flush(); window.scrollTo(0, 0); });
  window.addEventListener("scroll", () => { if (!paused() && waiting.length) flush(); });
  const source = new EventSource("/live?" + params.toString());
  source.addEventListener("entry", (event) => {
    const data = JSON.parse(event.data);
    if (paused()) {
      waiting.push(data.html);
      if (waiting.length > KEEP) waiting.shift();
      fresh += 1;
      follow.textContent = label[1];
      button.textContent = label[2].replace("{n}", String(fresh));
      button.hidden = false;
    } else {
      show(data.html);
    }
  });
  source.addEventListener("ended", () => { source.close(); window.location.assign("/login"); });
})();
