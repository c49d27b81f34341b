// countersign approval UI: the live parts. Every page works without this
// file; with it, the inbox updates itself, countdowns tick, copy buttons
// copy, and the browser can notify you of new requests.
"use strict";

function fmtLeft(ms) {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + m + "m";
  return m + "m " + (s % 60) + "s";
}

function tick() {
  document.querySelectorAll("[data-expires]").forEach((el) => {
    const left = Date.parse(el.dataset.expires) - Date.now();
    // data-done: what a countdown that is not an expiry says at zero (a delay: "now")
    el.textContent = left <= 0 && el.dataset.done ? el.dataset.done : fmtLeft(left);
  });
}

function wireCopy(root) {
  root.querySelectorAll("[data-copy]").forEach((b) => {
    b.addEventListener("click", async () => {
      const el = document.getElementById(b.dataset.copy);
      try { await navigator.clipboard.writeText(el.textContent.trim()); b.textContent = "Copied"; }
      catch { const r = document.createRange(); r.selectNodeContents(el); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }
    });
  });
}

function notify(text) {
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification("countersign", { body: text });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  wireCopy(document);

  const bell = document.getElementById("enable-notifications");
  if (bell && "Notification" in window && Notification.permission === "default") {
    bell.hidden = false;
    bell.addEventListener("click", () => Notification.requestPermission().then(() => { bell.hidden = true; }));
  }

  const list = document.getElementById("inbox-list");
  if (!list || !window.EventSource) return;
  // The server renders (and escapes) the list; the script only swaps it in.
  async function refresh() {
    const q = new URLSearchParams(location.search);
    q.set("fragment", "1");
    const r = await fetch("/inbox?" + q.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (r.ok) { list.innerHTML = await r.text(); tick(); }
  }
  const es = new EventSource("/ui/events");
  es.addEventListener("transaction.pending", (ev) => {
    refresh();
    try { const d = JSON.parse(ev.data).data; notify("New request: " + (d.memo || d.type)); } catch {}
  });
  for (const t of ["transaction.authorized", "transaction.rejected", "transaction.expired", "transaction.cancelled", "quorum.progress", "delay.started"]) {
    es.addEventListener(t, refresh);
  }
});
