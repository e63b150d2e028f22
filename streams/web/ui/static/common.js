// Shared helpers of the Segments page: API calls through the session, errors in words,
// local times with UTC on hover, the flash line, and the segment actions' dialogs.
"use strict";

const LS = (() => {
  const csrf = () => document.body.dataset.csrf || "";

  async function api(method, path, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path.startsWith("/ui/") ? path : "/ui/api" + path, init);
    } catch (err) {
      return { ok: false, status: 0, body: null,
               error: { code: "network", message: "the worker did not answer: " + err } };
    }
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (response.ok) return { ok: true, status: response.status, body: data };
    const error = data && data.error ? data.error
      : { code: "http_" + response.status, message: "HTTP " + response.status + ": " + text.slice(0, 200) };
    if (response.status === 401 && error.code === "no_session") {
      window.location = "/ui/signin?next=" + encodeURIComponent(location.pathname + location.search);
    }
    return { ok: false, status: response.status, body: data, error };
  }

  function errorText(error) {
    if (!error) return "unknown error";
    return error.message + (error.code ? " (" + error.code + (error.path ? " at " + error.path : "") + ")" : "");
  }

  function flash(message, kind) {
    const el = document.getElementById("flash");
    if (!el) return;
    el.textContent = message;
    el.className = "flash " + (kind || "ok");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.hidden = false;
  }

  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  function utc(ms) { return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"); }
  function timeEl(ms) {
    if (!ms) { const s = document.createElement("span"); s.className = "muted"; s.textContent = "—"; return s; }
    const t = document.createElement("time");
    t.dateTime = new Date(ms).toISOString();
    t.dataset.ms = ms;
    t.title = utc(ms);
    t.textContent = fmt.format(new Date(ms));
    return t;
  }
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[data-ms]").forEach((t) => {
      const ms = Number(t.dataset.ms);
      t.textContent = fmt.format(new Date(ms));
      t.title = utc(ms);
    });
  }

  // a <dialog> with a form: resolves with the form's values, or null when canceled
  function ask(dialog, fill, submit) {
    const form = dialog.querySelector("form");
    const errorEl = dialog.querySelector(".error");
    errorEl.hidden = true;
    if (fill) fill(form);
    dialog.showModal();
    return new Promise((resolve) => {
      async function onSubmit(ev) {
        if (ev.submitter && ev.submitter.value === "cancel") { done(null); return; }
        ev.preventDefault();
        const values = Object.fromEntries(new FormData(form).entries());
        const result = await submit(values);
        if (result && !result.ok) {
          errorEl.textContent = errorText(result.error);
          errorEl.hidden = false;
          return;
        }
        dialog.close();
        done(result || { ok: true });
      }
      function onClose() { done(null); }
      function done(value) {
        form.removeEventListener("submit", onSubmit);
        dialog.removeEventListener("close", onClose);
        resolve(value);
      }
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("close", onClose);
    });
  }

  const enc = encodeURIComponent;
  const actions = {
    async refresh(ids) { return api("POST", "/segments/refresh", { segment_ids: ids }); },
    async activate(id) { return api("POST", "/segments/" + enc(id) + "/activate"); },
    async deactivate(id) { return api("POST", "/segments/" + enc(id) + "/deactivate"); },
    rename(id, name) {
      return ask(document.getElementById("dlg-rename"),
        (f) => { f.name.value = name || ""; },
        (v) => api("POST", "/segments/" + enc(id) + "/rename", { name: v.name }));
    },
    duplicate(id, name) {
      return ask(document.getElementById("dlg-duplicate"),
        (f) => { f.new_id.value = id + "-copy"; f.name.value = (name || id) + " (copy)"; },
        (v) => api("POST", "/segments/" + enc(id) + "/duplicate", { new_id: v.new_id, name: v.name || null }));
    },
    schedule(id, action) {
      const dialog = document.getElementById("dlg-schedule");
      dialog.querySelector("h2").textContent = "Schedule " + (action === "activate" ? "activation" : "deactivation");
      return ask(dialog, (f) => {
        f.action.value = action;
        const soon = new Date(Date.now() + 24 * 3600 * 1000);
        const pad = (n) => String(n).padStart(2, "0");
        f.date.value = soon.getFullYear() + "-" + pad(soon.getMonth() + 1) + "-" + pad(soon.getDate());
        f.time.value = "06:00";
        f.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      }, (v) => api("POST", "/ui/data/segments/" + enc(id) + "/schedule",
        { action: v.action, local: v.date + "T" + v.time, timezone: v.timezone }));
    },
    async remove(ids) {
      const dialog = document.getElementById("dlg-delete");
      const uses = dialog.querySelector(".uses");
      uses.textContent = "Checking what uses " + ids.join(", ") + "…";
      const lines = [];
      for (const id of ids) {
        const got = await api("GET", "/ui/data/segments/" + enc(id) + "/uses");
        if (!got.ok) { lines.push(id + ": " + errorText(got.error)); continue; }
        const deps = got.body.dependents.map((d) => d.id);
        const exps = got.body.exports.map((e) => e.id);
        lines.push("Segment " + id + ": " +
          (deps.length ? "used by in_segment in " + deps.join(", ") : "no segment uses it") + "; " +
          (exps.length ? "in exports " + exps.join(", ") : "in no export") + ".");
      }
      return ask(dialog, () => {
        uses.textContent = "";
        for (const line of lines) { const p = document.createElement("p"); p.textContent = line; uses.appendChild(p); }
      }, async () => {
        for (const id of ids) {
          const got = await api("DELETE", "/segments/" + enc(id));
          if (!got.ok) return got;
        }
        return { ok: true };
      });
    },
  };

  document.addEventListener("DOMContentLoaded", () => localizeTimes());
  return { api, errorText, flash, timeEl, localizeTimes, utc, ask, actions, fmt };
})();

// buttons that make one API call: data-call="METHOD /path", data-body (JSON), data-label
document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button[data-call]");
  if (!button) return;
  const [method, path] = button.dataset.call.split(" ");
  const label = button.dataset.label || button.textContent.trim();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const got = await LS.api(method, path, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
  button.disabled = false;
  if (got.ok) {
    LS.flash(label + ": done", "ok");
    if (button.dataset.reload !== undefined) setTimeout(() => location.reload(), 400);
  } else {
    LS.flash(label + " failed: " + LS.errorText(got.error), "error");
  }
});
