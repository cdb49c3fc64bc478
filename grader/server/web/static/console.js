// Every page: a confirmation before any form[data-confirm] is sent (Cancel, Re-grade, Reveal, a new
// link, a team removed), and the countdown to the event's end. The coach's page: its changing part
// (#live) put in place whenever /coach/events says it changed, never a reload, so no form is ever
// sent again. The pages work without it: the end is then shown as a plain time.
"use strict";

function confirmations() {
  // delegated: forms put in place later (the coach's live part) are asked too
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  });
}

function left(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  if (d > 0) { return d + " d " + h + " h " + pad(m) + " min left"; }
  if (h > 0) { return h + " h " + pad(m) + " min left"; }
  return m + " min " + pad(s % 60) + " s left";
}

function countdown() {
  const el = document.getElementById("countdown");
  if (!el || !el.dataset.ends) { return; }
  const ends = Date.parse(el.dataset.ends);
  if (Number.isNaN(ends)) { return; }
  const time = el.querySelector("time");
  el.title = time ? "The event ends " + time.textContent.replace(/^(ends|ended) /, "") : "";
  const tick = () => {
    const ms = ends - Date.now();
    el.classList.toggle("ended", ms <= 0);
    el.classList.toggle("soon", ms > 0 && ms < 15 * 60 * 1000);
    if (time) { time.textContent = ms <= 0 ? "ended" : left(ms); }
    if (ms > 0) { window.setTimeout(tick, 1000 - (Date.now() % 1000) + 5); }
  };
  tick();
}

function live() {
  const region = document.getElementById("live");
  if (!region || !region.dataset.events || !window.EventSource || !window.fetch) { return; }
  let wanted = region.dataset.version;
  let busy = false;
  const refresh = () => {
    if (busy || wanted === region.dataset.version) { return; }
    busy = true;
    const version = wanted;
    fetch(region.dataset.fragment, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((html) => { region.innerHTML = html; region.dataset.version = version; busy = false; refresh(); })
      .catch(() => { busy = false; window.setTimeout(refresh, 3000); });  // away a moment: again later
  };
  const source = new EventSource(region.dataset.events);
  source.addEventListener("overview", (e) => {
    try { wanted = JSON.parse(e.data).version; } catch (err) { return; }
    refresh();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  countdown();
  live();
});
