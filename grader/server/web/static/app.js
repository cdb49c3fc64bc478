// Live progress of the team's submissions (Server-Sent Events, polling where they fail) and
// drag and drop onto the upload form. The pages work without it. It never sends or re-sends a
// form: a finished row is fetched with a GET (refresh).
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
  // the verdict, the scorecard link and what is left today are drawn by the server: the page is
  // fetched again (a GET) and the row taken from it. Never a reload of the page: on the answer to
  // a POST it would send the form again.
  window.setTimeout(() => refresh(row), 300);
}

function refresh(row) {
  const here = window.location.pathname;
  fetch(here, {credentials: "same-origin", headers: {Accept: "text/html"}})
    .then((r) => { if (!r.ok) { throw new Error("status " + r.status); } return r.text(); })
    .then((html) => {
      const page = new DOMParser().parseFromString(html, "text/html");
      const fresh = page.querySelector('tr.sub[data-id="' + row.dataset.id + '"]');
      if (fresh) { row.replaceWith(document.importNode(fresh, true)); }
      ["left", "practice-left"].forEach((id) => {
        const now = page.getElementById(id);
        const old = document.getElementById(id);
        if (now && old) { old.replaceWith(document.importNode(now, true)); }
      });
    })
    .catch(() => window.location.replace(here));  // a GET of the page's own address, never a form
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
