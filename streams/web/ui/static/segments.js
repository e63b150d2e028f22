// The segments list: search, filters, sort, selection + action bar, row menus, live counts.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("segments");
  const tbody = table.tBodies[0];
  const rows = () => Array.from(tbody.rows);
  const search = document.getElementById("f-search");
  search.form.addEventListener("submit", (ev) => ev.preventDefault());
  const filters = { tag: document.getElementById("f-tag"), state: document.getElementById("f-state"),
                    type: document.getElementById("f-type") };

  function applyFilters() {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const tr of rows()) {
      const d = tr.dataset;
      const ok = (!q || d.name.toLowerCase().includes(q) || d.id.includes(q)) &&
        (!filters.tag.value || d.tags.split(",").includes(filters.tag.value)) &&
        (!filters.state.value || d.state === filters.state.value) &&
        (!filters.type.value || d.type === filters.type.value);
      tr.hidden = !ok;
      if (ok) shown += 1;
      if (!ok) tr.querySelector(".pick").checked = false;
    }
    document.getElementById("empty").hidden = shown > 0;
    updateBar();
  }
  search.addEventListener("input", applyFilters);
  Object.values(filters).forEach((s) => s.addEventListener("change", applyFilters));

  const numeric = new Set(["members", "last_refresh", "modified_at"]);
  table.querySelectorAll("button.sort").forEach((button) => {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      const th = button.closest("th");
      const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      table.querySelectorAll("th[aria-sort]").forEach((h) => h.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", dir);
      const sign = dir === "ascending" ? 1 : -1;
      const sorted = rows().sort((a, b) => {
        const x = a.dataset[key] || "", y = b.dataset[key] || "";
        const c = numeric.has(key) ? Number(x) - Number(y) : x.localeCompare(y);
        return sign * c;
      });
      sorted.forEach((tr) => tbody.appendChild(tr));
    });
  });

  // selection and the action bar
  const selectAll = document.getElementById("select-all");
  function selected() { return rows().filter((tr) => !tr.hidden && tr.querySelector(".pick").checked).map((tr) => tr.dataset.id); }
  function updateBar() {
    const ids = selected();
    document.getElementById("selected-count").textContent = ids.length + " selected";
    document.querySelectorAll("[data-bulk]").forEach((b) => { b.disabled = ids.length === 0; });
  }
  selectAll.addEventListener("change", () => {
    rows().filter((tr) => !tr.hidden).forEach((tr) => { tr.querySelector(".pick").checked = selectAll.checked; });
    updateBar();
  });
  tbody.addEventListener("change", (ev) => { if (ev.target.classList.contains("pick")) updateBar(); });

  async function report(what, result, reload) {
    if (!result) return;
    if (result.ok) {
      LS.flash(what + " done", "ok");
      if (reload) setTimeout(() => location.reload(), 400);
    } else {
      LS.flash(what + " failed: " + LS.errorText(result.error), "error");
    }
  }

  async function refreshIds(ids, label) {
    const got = await LS.actions.refresh(ids);
    if (got.ok) {
      const job = got.body && got.body.job ? got.body.job.job_id : null;
      LS.flash(label + " started" + (job ? " (job " + job + ")" : ""), "ok");
      poll();
    } else {
      LS.flash(label + " failed: " + LS.errorText(got.error), "error");
    }
  }

  document.querySelectorAll("[data-bulk]").forEach((button) => {
    button.addEventListener("click", async () => {
      const ids = selected();
      const act = button.dataset.bulk;
      if (act === "refresh") return refreshIds(ids, "Refresh of " + ids.join(", "));
      if (act === "delete") return report("Delete", await LS.actions.remove(ids), true);
      for (const id of ids) {
        const got = await LS.actions[act](id);
        if (!got.ok) return report(act + " of " + id, got, true);
      }
      report(act + " of " + ids.join(", "), { ok: true }, true);
    });
  });

  document.getElementById("refresh-all").addEventListener("click", async () => {
    const got = await LS.api("POST", "/segments/refresh", { all: true });
    if (got.ok) { LS.flash("Refresh of all segments started", "ok"); poll(); }
    else LS.flash("Refresh all failed: " + LS.errorText(got.error), "error");
  });

  tbody.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (!button) return;
    const tr = button.closest("tr");
    const id = tr.dataset.id, name = tr.dataset.name;
    button.closest("details").open = false;
    const act = button.dataset.act;
    if (act === "refresh") return refreshIds([id], "Refresh of " + id);
    if (act === "activate" || act === "deactivate") return report(act + " of " + id, await LS.actions[act](id), true);
    if (act === "rename") return report("Rename", await LS.actions.rename(id, name), true);
    if (act === "duplicate") return report("Duplicate", await LS.actions.duplicate(id, name), true);
    if (act === "schedule") return report("Schedule " + button.dataset.action, await LS.actions.schedule(id, button.dataset.action), false);
    if (act === "delete") return report("Delete of " + id, await LS.actions.remove([id]), true);
  });

  // one row menu open at a time; a click elsewhere or Escape closes it
  document.addEventListener("click", (ev) => {
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (!menu.contains(ev.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });

  // live member counts, states and job states (polling)
  async function poll() {
    const segs = await LS.api("GET", "/segments");
    const jobs = await LS.api("GET", "/jobs?limit=50");
    if (!segs.ok) return;
    const latest = {};
    if (jobs.ok) {
      for (const job of jobs.body.jobs) {
        for (const sid of job.segment_ids) if (!(sid in latest)) latest[sid] = job;
      }
    }
    for (const seg of segs.body.segments) {
      const tr = tbody.querySelector('tr[data-id="' + CSS.escape(seg.id) + '"]');
      if (!tr) continue;
      tr.dataset.members = seg.members;
      tr.querySelector(".members").textContent = seg.members;
      tr.dataset.last_refresh = seg.last_refresh || 0;
      const cell = tr.querySelector(".refresh");
      cell.replaceChildren(LS.timeEl(seg.last_refresh), document.createTextNode(" "));
      const job = latest[seg.id];
      if (job) {
        const status = (job.tasks && job.tasks[seg.id]) || job.status;
        const a = document.createElement("a");
        a.href = "/ui/jobs/" + encodeURIComponent(job.job_id);
        a.className = "badge badge-" + status.toLowerCase();
        a.textContent = job.command + ": " + status;
        cell.appendChild(a);
      }
    }
  }
  poll();
  setInterval(poll, 3000);
  applyFilters();
});
