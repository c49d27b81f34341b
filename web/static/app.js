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
  root.querySelectorAll("[data-copy], [data-copy-value]").forEach((b) => {
    if (b.dataset.wired) return;
    b.dataset.wired = "1";
    b.addEventListener("click", async (ev) => {
      ev.preventDefault(); // a copy button inside an inbox row's link copies, it does not navigate
      ev.stopPropagation();
      const el = b.dataset.copy ? document.getElementById(b.dataset.copy) : null;
      const value = el ? el.textContent.trim() : b.dataset.copyValue;
      try { await navigator.clipboard.writeText(value); b.textContent = "Copied"; }
      catch { if (el) { const r = document.createRange(); r.selectNodeContents(el); const s = getSelection(); s.removeAllRanges(); s.addRange(r); } }
    });
  });
}

// The decision: Enter in the code field never submits (the form's first
// submit button is disabled too, for pages without this script), Approve
// stays disabled until a danger request is acknowledged, and the phone
// footer's Reject opens the confirmation.
function wireDecision() {
  const code = document.getElementById("mfa-code");
  if (code) {
    code.addEventListener("keydown", (ev) => { if (ev.key === "Enter") ev.preventDefault(); });
  }
  const ack = document.getElementById("acknowledge");
  const approve = document.getElementById("approve");
  if (ack && approve) {
    const passkey = document.getElementById("approve-passkey");
    const sync = () => { approve.disabled = !ack.checked; if (passkey) passkey.disabled = !ack.checked; };
    ack.addEventListener("change", sync);
    sync();
  }
  const panel = document.getElementById("reject-panel");
  if (panel) {
    panel.addEventListener("toggle", () => { if (panel.open) { const r = document.getElementById("reason"); if (r) r.focus(); } });
  }
}

// Passkeys (WebAuthn). The server sends the options as JSON with binary
// fields in base64url; the browser wants ArrayBuffers, and the answer goes
// back as JSON with base64url again.
const b64u = {
  dec(s) { s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) s += "="; return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer; },
  enc(buf) { let t = ""; new Uint8Array(buf).forEach((b) => { t += String.fromCharCode(b); }); return btoa(t).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""); },
};

function credentialJSON(c) {
  const r = c.response, out = { id: c.id, rawId: b64u.enc(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(), response: { clientDataJSON: b64u.enc(r.clientDataJSON) } };
  if (r.attestationObject) {
    out.response.attestationObject = b64u.enc(r.attestationObject);
    if (r.getTransports) out.response.transports = r.getTransports();
  } else {
    out.response.authenticatorData = b64u.enc(r.authenticatorData);
    out.response.signature = b64u.enc(r.signature);
    if (r.userHandle) out.response.userHandle = b64u.enc(r.userHandle);
  }
  if (c.authenticatorAttachment) out.authenticatorAttachment = c.authenticatorAttachment;
  return JSON.stringify(out);
}

async function postForm(url, fields) {
  const r = await fetch(url, { method: "POST", body: new URLSearchParams(fields), credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error((await r.text()).trim() || ("HTTP " + r.status));
  return r;
}

function wrongOrigin(el, status) {
  const want = el.dataset.origin;
  if (want && location.origin !== want) {
    status.textContent = "Passkeys work on " + want + ": open this page there.";
    return true;
  }
  return false;
}

function wirePasskeys() {
  const form = document.getElementById("passkey-form");
  if (form) {
    const status = document.getElementById("passkey-form-status");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (wrongOrigin(form, status)) return;
      const csrf = form.elements.csrf.value;
      try {
        const opts = await (await postForm("/passkeys/begin", { csrf, mfa_code: form.elements.mfa_code.value })).json();
        const pk = opts.publicKey;
        pk.challenge = b64u.dec(pk.challenge);
        pk.user.id = b64u.dec(pk.user.id);
        (pk.excludeCredentials || []).forEach((c) => { c.id = b64u.dec(c.id); });
        const cred = await navigator.credentials.create({ publicKey: pk });
        await postForm("/passkeys/finish", { csrf, name: form.elements.name.value, credential: credentialJSON(cred) });
        location.reload();
      } catch (e) { status.textContent = "Not added: " + e.message; }
    });
  }
  const btn = document.getElementById("approve-passkey");
  if (btn) {
    const status = document.getElementById("passkey-status");
    btn.addEventListener("click", async () => {
      if (wrongOrigin(btn, status)) return;
      const id = btn.dataset.tx, csrf = btn.dataset.csrf;
      try {
        const opts = await (await postForm("/tx/" + encodeURIComponent(id) + "/passkey", { csrf })).json();
        const pk = opts.publicKey;
        pk.challenge = b64u.dec(pk.challenge);
        (pk.allowCredentials || []).forEach((c) => { c.id = b64u.dec(c.id); });
        const cred = await navigator.credentials.get({ publicKey: pk });
        const ack = document.getElementById("acknowledge");
        const fields = { csrf, decision: "approve", passkey: credentialJSON(cred) };
        if (ack && ack.checked) fields.acknowledge = "yes";
        // The answer is a redirect that sets the page's one-time message:
        // not followed here (that would spend the message), but by the page.
        const r = await fetch("/tx/" + encodeURIComponent(id) + "/decide", { method: "POST", body: new URLSearchParams(fields), credentials: "same-origin", redirect: "manual" });
        if (r.type !== "opaqueredirect" && !r.ok) throw new Error((await r.text()).trim() || ("HTTP " + r.status));
        location.assign("/tx/" + encodeURIComponent(id));
      } catch (e) { status.textContent = "Not approved: " + e.message; }
    });
  }
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
  wireDecision();
  wirePasskeys();

  const bell = document.getElementById("enable-notifications");
  if (bell && "Notification" in window && Notification.permission === "default") {
    bell.hidden = false;
    bell.addEventListener("click", () => Notification.requestPermission().then(() => { bell.hidden = true; }));
  }

  // The pending badge follows the inbox as it changes.
  function countPending() {
    const badge = document.getElementById("pending-count");
    if (!badge || !list) return;
    const n = list.querySelectorAll(".txrow").length;
    badge.textContent = n >= 50 ? "50+" : String(n);
    badge.hidden = n === 0;
  }
  const list = document.getElementById("inbox-list");
  if (!list || !window.EventSource) return;
  // The server renders (and escapes) the list; the script only swaps it in.
  async function refresh() {
    const q = new URLSearchParams(location.search);
    q.set("fragment", "1");
    const r = await fetch("/inbox?" + q.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (r.ok) { list.innerHTML = await r.text(); tick(); wireCopy(list); countPending(); }
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
