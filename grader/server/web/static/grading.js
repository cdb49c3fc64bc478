// The coach's grading of one question (/coach/grading/CHALLENGE/CRITERION): each grade saved at
// once with fetch (POST, the form's CSRF token, Accept: application/json), the page kept, and the
// keyboard: j or n the next answer, k or p the previous one, digits toggle the current answer's
// rubric items, Enter saves and goes to the next (Ctrl+Enter in the comment), c the comment,
// Escape leaves a field. The points follow the checked items' sum until the coach types them.
// The page works without it: each form is a plain POST answered with a redirect (post/redirect/get).
"use strict";

(() => {
  const answers = () => Array.from(document.querySelectorAll("article.answer"));
  let current = -1;

  function select(index, focus) {
    const all = answers();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((el, i) => el.classList.toggle("current", i === current));
    const el = all[current];
    if (focus !== false) {
      el.focus({preventScroll: true});
      el.scrollIntoView({block: "start", behavior: "smooth"});
    }
  }

  function sumOf(form) {
    let sum = 0;
    form.querySelectorAll('input[name="items"]:checked').forEach((box) => { sum += Number(box.dataset.points) || 0; });
    return Math.round(sum * 1000) / 1000;
  }

  function follow(form) {
    const points = form.querySelector('input[name="points"]');
    if (points && points.dataset.auto !== "no" && form.querySelector('input[name="items"]')) {
      const sum = sumOf(form);
      points.value = form.querySelector('input[name="items"]:checked') ? String(sum) : "";
    }
  }

  function say(article, text, failed) {
    const said = article.querySelector('[data-field="said"]');
    if (said) {
      said.textContent = text;
      said.classList.toggle("error", Boolean(failed));
    }
  }

  function counted(name, by) {
    const el = document.querySelector('.question-card [data-count="' + name + '"]');
    if (el) { el.textContent = String(Math.max(0, (Number(el.textContent) || 0) + by)); }
  }

  function saved(article, data) {
    const status = article.querySelector('[data-field="status"]');
    const wasGraded = article.classList.contains("state-graded");
    if (status) {
      const badge = document.createElement("span");
      badge.className = "badge graded";
      badge.textContent = "graded " + data.points + "/" + data.max_points;
      status.replaceChildren(badge);
    }
    const message = article.querySelector('[data-field="message"]');
    if (message) { message.textContent = "graded by the coach: " + data.points + " of " + data.max_points + " points"; }
    if (!wasGraded) { counted("graded", 1); counted("awaiting", -1); }
    article.classList.remove("state-awaiting", "changed");
    article.classList.add("state-graded");
    say(article, data.said, false);
  }

  function save(form, andNext) {
    const article = form.closest("article.answer");
    say(article, "saving…", false);
    return fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                               headers: {"Accept": "application/json"}})
      .then((r) => r.json().then((data) => ({ok: r.ok, data}), () => ({ok: false, data: {error: "status " + r.status}})))
      .then(({ok, data}) => {
        if (!ok || !data.ok) { say(article, "Not saved: " + (data.error || "refused"), true); return; }
        saved(article, data);
        if (andNext) { select(answers().indexOf(article) + 1); }
      })
      .catch(() => say(article, "Not saved: the server did not answer. Try again.", true));
  }

  function typing(target) {
    return target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement
      || (target instanceof HTMLInputElement && target.type !== "checkbox") || (target && target.isContentEditable);
  }

  function onKey(e) {
    if (e.altKey || e.defaultPrevented) { return; }
    const target = e.target;
    const all = answers();
    if (!all.length) { return; }
    if (target instanceof HTMLTextAreaElement && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      const form = target.closest("form.grade-form");
      if (form) { save(form, true); }
      return;
    }
    if (e.key === "Escape" && typing(target)) {
      const article = target.closest("article.answer");
      if (article) { article.focus({preventScroll: true}); }
      return;
    }
    if (typing(target) || e.ctrlKey || e.metaKey) { return; }
    if (current < 0) { select(0, false); }
    const article = all[current];
    const form = article && article.querySelector("form.grade-form");
    if (e.key === "j" || e.key === "n") { e.preventDefault(); select(current + 1); return; }
    if (e.key === "k" || e.key === "p") { e.preventDefault(); select(current - 1); return; }
    if (!form) { return; }
    if (/^[1-9]$/.test(e.key)) {
      const box = form.querySelectorAll('input[name="items"]')[Number(e.key) - 1];
      if (box) { e.preventDefault(); box.checked = !box.checked; follow(form); }
      return;
    }
    if (e.key === "c") {
      const comment = form.querySelector('textarea[name="comment"]');
      if (comment) { e.preventDefault(); comment.focus(); }
      return;
    }
    if (e.key === "Enter" && !(target instanceof HTMLButtonElement) && !(target instanceof HTMLAnchorElement)) {
      e.preventDefault();
      save(form, true);
    }
  }

  function start() {
    const all = answers();
    if (!all.length) { return; }
    document.querySelectorAll("form.grade-form").forEach((form) => {
      const points = form.querySelector('input[name="points"]');
      if (points && points.value !== "" && Number(points.value) !== sumOf(form)) { points.dataset.auto = "no"; }
      if (points) { points.addEventListener("input", () => { points.dataset.auto = points.value === "" ? "" : "no"; }); }
      form.addEventListener("change", (e) => { if (e.target.name === "items") { follow(form); } });
      form.addEventListener("submit", (e) => {
        if (e.defaultPrevented) { return; }  // a confirmation said no
        e.preventDefault();
        save(form, true);
      });
      form.querySelectorAll("button.reuse").forEach((button) => {
        button.addEventListener("click", (e) => {
          e.preventDefault();  // with the script, a reusable comment goes into the comment, not sent at once
          const comment = form.querySelector('textarea[name="comment"]');
          if (!comment) { return; }
          comment.value = (comment.value.trim() ? comment.value.trimEnd() + "\n" : "") + button.dataset.comment;
          comment.focus();
        });
      });
    });
    all.forEach((article, i) => article.addEventListener("focusin", () => select(i, false)));
    const wanted = window.location.hash ? all.findIndex((a) => "#" + a.id === window.location.hash) : -1;
    select(wanted >= 0 ? wanted : 0, wanted >= 0);
    document.addEventListener("keydown", onKey);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
