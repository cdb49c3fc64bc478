// Live progress of the team's submissions (Server-Sent Events, polling where they fail) and
// drag and drop onto the upload form. The pages work without it.
"use strict";

function show(row, st) {
  const set = (field, text) => {
    const el = row.querySelector('[data-field="' + field + '"]');
    if (el) { el.textContent = text; }
  };
  set("state", st.state);
  set("queue", st.queue_position ? "(place " + st.queue_position + " in the queue)" : "");
  let progress = st.progress || "";
  if (st.elapsed_s !== null && st.elapsed_s !== undefined) {
    progress += " · " + Math.round(st.elapsed_s) + " s";
  }
  if (st.error) { progress += " " + st.error; }
  set("progress", progress);
  const state = row.querySelector('[data-field="state"]');
  if (state) { state.className = "state state-" + st.state; }
}

function finished(row) {
  row.dataset.final = "yes";
  // the verdict and the scorecard link are drawn by the server
  window.setTimeout(() => window.location.reload(), 300);
}

function poll(row) {
  const tick = () => {
    fetch(row.dataset.status, {credentials: "same-origin"})
      .then((r) => r.json())
      .then((st) => { show(row, st); if (st.final) { finished(row); } else { window.setTimeout(tick, 2000); } })
      .catch(() => window.setTimeout(tick, 5000));
  };
  tick();
}

function watch(row) {
  if (!window.EventSource) { poll(row); return; }
  const source = new EventSource(row.dataset.events);
  source.addEventListener("progress", (e) => show(row, JSON.parse(e.data)));
  source.addEventListener("done", (e) => { source.close(); show(row, JSON.parse(e.data)); finished(row); });
  source.onerror = () => { if (row.dataset.final !== "yes") { source.close(); poll(row); } };
}

function dropZone() {
  const zone = document.getElementById("drop");
  const input = document.getElementById("files");
  if (!zone || !input) { return; }
  ["dragenter", "dragover"].forEach((n) => zone.addEventListener(n, (e) => {
    e.preventDefault(); zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((n) => zone.addEventListener(n, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("tr.sub").forEach((row) => {
    if (row.dataset.final === "no" && row.dataset.events) { watch(row); }
  });
  dropZone();
});
