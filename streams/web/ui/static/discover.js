// Find segments: start an analysis job (similar customers, suggestions by measure or by
// activity), follow its progress, show the result; accept a suggestion as a live segment.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const paths = {
    similar: (v) => "/segments/" + enc(v.source) + "/similar",
    measure: () => "/suggestions/measure",
    activity: () => "/suggestions/activity",
  };
  const list = (text) => (text || "").split(",").map((s) => s.trim()).filter(Boolean);

  function body(kind, v) {
    const out = {};
    if (kind === "similar") {
      if (v.size) out.size = Number(v.size);
      if (v.min_score !== "") out.min_score = Number(v.min_score);
      if (list(v.attributes).length) out.attributes = list(v.attributes);
      if (v.segment_id) out.segment_id = v.segment_id;
    } else if (kind === "measure") {
      out.primary = v.primary;
      if (list(v.using).length) out.using = list(v.using);
      if (v.target) { try { out.target = JSON.parse(v.target); } catch (e) { out.target = v.target; } }
      if (v.max_depth) out.max_depth = Number(v.max_depth);
    } else {
      out.event = v.event;
      if (v.value) out.value = v.value;
      out.lookback = v.lookback || "90d";
    }
    return out;
  }

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, val] of Object.entries(attrs || {})) e.setAttribute(k, val);
    return e;
  }

  function table(caption, headers, rows) {
    const t = el("table", undefined, { class: "data" });
    t.appendChild(el("caption", caption));
    const head = el("tr");
    headers.forEach((h) => head.appendChild(el("th", h, { scope: "col" })));
    t.appendChild(el("thead")).appendChild(head);
    const tb = t.appendChild(el("tbody"));
    rows.forEach((r) => { const tr = tb.appendChild(el("tr")); r.forEach((c) => tr.appendChild(c instanceof Node ? el("td").appendChild(c).parentNode : el("td", c))); });
    return t;
  }

  function showError(error) {
    const e = $("job-error");
    e.textContent = LS.errorText(error);
    e.hidden = false;
    if (error && error.path) {
      const field = document.querySelector('[role=tabpanel]:not([hidden]) [data-path="' + error.path.replace(/\[\d+\]$/, "") + '"]');
      if (field) { field.setAttribute("aria-invalid", "true"); field.setAttribute("aria-describedby", "job-error"); }
    }
  }

  function progress(job) {
    const box = $("job-progress");
    box.textContent = "";
    const p = job.progress;
    if (!p) { box.appendChild(el("p", job.status === "Queued" ? "Waiting to start…" : "", { class: "muted" })); return; }
    const label = el("p", p.stage + ": " + p.done + " of " + p.total);
    const bar = el("progress", undefined, { max: String(p.total || 1), value: String(p.done), "aria-label": p.stage });
    box.append(label, bar);
  }

  function similarResult(r) {
    const out = $("result");
    out.appendChild(el("p", "Model quality: ROC AUC " + r.auc.toFixed(3) + " (" + r.grade + "), out of fold, " + r.training_rows + " training rows.", { id: "quality" }));
    out.appendChild(table("Customers per band", ["Band", "Score", "Customers"],
      r.bands.map((b) => [b.band, b.from.toFixed(2) + "–" + b.to.toFixed(2), b.customers])));
    const link = el("a", r.segment_id, { href: "/ui/segments/" + enc(r.segment_id) });
    const p = el("p", r.size + " customers saved as expansion segment ");
    p.appendChild(link);
    out.appendChild(p);
    if (r.left_out && r.left_out.length) out.appendChild(el("p", "Left out: " + r.left_out.map((l) => l.attribute + " (" + l.reason + ")").join(", "), { class: "muted" }));
  }

  function suggestionsResult(r) {
    const out = $("result");
    if (r.measure) out.appendChild(el("p", r.measure + " over " + r.customers + " customers: " + r.overall_value + " (" + r.test + ")"));
    else out.appendChild(el("p", "RFM on " + r.event + ": " + r.active_customers + " of " + r.customers + " customers active"));
    const rows = r.suggestions.map((s) => {
      const accept = el("div");
      const a = el("button", "Accept", { type: "button", "data-accept": s.suggestion_id, "aria-label": "Accept " + s.definition.name });
      const b = el("button", "Accept and activate", { type: "button", class: "primary", "data-accept": s.suggestion_id, "data-activate": "1", "aria-label": "Accept and activate " + s.definition.name });
      accept.append(a, " ", b);
      const detail = s.text || s.thresholds || "";
      const lift = s.lift !== undefined && s.lift !== null ? Number(s.lift).toFixed(2) + "×" : "—";
      const signif = s.significant === undefined ? "—" : (s.significant ? "yes" : "no") + (s.p_value !== undefined ? " (p " + Number(s.p_value).toPrecision(2) + ")" : "");
      return [s.definition.name, s.size, detail, lift, signif, accept];
    });
    out.appendChild(table("Suggested segments", ["Suggestion", "Size", "Value / thresholds", "Lift", "Significant", "Accept"], rows));
  }

  async function follow(jobId) {
    $("job-card").hidden = false;
    $("job-id").textContent = jobId.slice(0, 8);
    $("job-link").href = "/ui/jobs/" + enc(jobId);
    $("job-error").hidden = true;
    $("result").textContent = "";
    for (;;) {
      const got = await LS.api("GET", "/jobs/" + enc(jobId));
      if (!got.ok) { showError(got.error); return; }
      const job = got.body;
      $("job-status").textContent = job.status;
      $("job-status").className = "badge " + job.status.toLowerCase();
      progress(job);
      if (job.finished_at) {
        $("job-progress").textContent = "";
        if (job.status === "Successful") {
          if (job.command === "similar") similarResult(job.result); else suggestionsResult(job.result);
        } else if (job.error) {
          showError(job.error);
        }
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  document.querySelectorAll("form.analysis").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid"));
      const kind = form.dataset.kind;
      const v = Object.fromEntries(new FormData(form).entries());
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const got = await LS.api("POST", paths[kind](v), body(kind, v));
      button.disabled = false;
      if (!got.ok) { $("job-card").hidden = false; $("result").textContent = ""; showError(got.error); return; }
      await follow(got.body.job_id);
    });
  });

  document.addEventListener("click", async (ev) => {
    const tab = ev.target.closest("[data-tab]");
    if (tab) {
      document.querySelectorAll("[data-tab]").forEach((t) => {
        const on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        $("pane-" + t.dataset.tab).hidden = !on;
      });
      history.replaceState(null, "", "?kind=" + tab.dataset.tab);
      return;
    }
    const accept = ev.target.closest("[data-accept]");
    if (!accept) return;
    accept.disabled = true;
    const got = await LS.api("POST", "/suggestions/" + enc(accept.dataset.accept) + "/accept",
      { activate: accept.dataset.activate === "1" });
    accept.disabled = false;
    if (!got.ok) { LS.flash("Accept failed: " + LS.errorText(got.error), "error"); return; }
    const seg = got.body.segment;
    LS.flash("Created " + (seg.active ? "active" : "inactive") + " segment " + seg.id, "ok");
    const cell = accept.parentNode;
    cell.textContent = "";
    cell.appendChild(el("a", "Created " + seg.id, { href: "/ui/segments/" + enc(seg.id) }));
  });
})();
