// Quick segment: an attribute's distribution as bars, one condition, its estimate, save.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("quick");
  const f = form.elements;
  const stats = document.getElementById("q-stats");
  const est = document.getElementById("q-estimate");
  let kind = "categorical";

  function bars(items) {
    const max = Math.max(...items.map((i) => i.n), 1);
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 600 " + (items.length * 24 + 4));
    svg.setAttribute("role", "img");
    svg.setAttribute("class", "bars");
    svg.setAttribute("aria-label", items.map((i) => i.label + ": " + i.n).join(", "));
    items.forEach((item, k) => {
      const y = k * 24 + 2;
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", 150); t.setAttribute("y", y + 15); t.setAttribute("text-anchor", "end");
      t.textContent = item.label;
      const r = document.createElementNS(NS, "rect");
      r.setAttribute("x", 160); r.setAttribute("y", y + 2); r.setAttribute("height", 16);
      r.setAttribute("width", Math.max(1, 360 * item.n / max));
      const n = document.createElementNS(NS, "text");
      n.setAttribute("x", 166 + 360 * item.n / max); n.setAttribute("y", y + 15);
      n.textContent = item.n;
      svg.append(t, r, n);
    });
    return svg;
  }

  async function loadStats() {
    const name = f.attr.value.trim();
    if (!name) { stats.replaceChildren(); return; }
    stats.textContent = "reading " + name + "…";
    const got = await LS.api("GET", "/attributes/" + encodeURIComponent(name) + "/stats");
    if (!got.ok) { stats.textContent = LS.errorText(got.error); return; }
    const b = got.body;
    kind = b.kind;
    const p = document.createElement("p");
    p.textContent = name + ": on " + b.present + " of " + b.customers + " customers (" + b.kind + ")";
    stats.replaceChildren(p);
    if (b.kind === "categorical") {
      stats.append(bars(b.top.map((t) => ({ label: t.value, n: t.customers }))));
      if (!f.value.value && b.top.length) f.value.value = b.top[0].value;
    } else if (b.kind === "numeric") {
      stats.append(bars(Object.entries(b.percentiles).map(([k, v]) => ({ label: k, n: v }))));
    }
    if (!f.id.value) f.id.value = name.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").slice(0, 40);
    update();
  }

  function definition() {
    const op = f.op.value;
    const cast = (v) => (kind === "numeric" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v.trim());
    const where = { attr: f.attr.value.trim(), op };
    if (op === "in" || op === "not_in") where.value = f.value.value.split(",").map(cast).filter((v) => v !== "");
    else if (op !== "exists" && op !== "not_exists") where.value = cast(f.value.value);
    if (!f.name.value && where.attr) f.name.value = where.attr + " " + op + " " + (where.value === undefined ? "" : where.value);
    return { id: f.id.value.trim(), name: f.name.value, tags: ["quick"], rules: [{ where }] };
  }

  let timer = null;
  function update() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const got = await LS.api("POST", "/segments/estimate", { segment: definition() });
      est.textContent = got.ok ? "Estimated size: " + got.body.estimate + " of " + got.body.customers + " customers"
        : "No estimate: " + LS.errorText(got.error);
    }, 350);
  }
  f.attr.addEventListener("change", loadStats);
  ["op", "value", "id", "name"].forEach((n) => f[n].addEventListener("input", update));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const activate = ev.submitter && ev.submitter.value === "1";
    const segment = definition();
    const got = await LS.api("POST", "/segments", { segment, activate });
    if (got.ok) { location = "/ui/segments/" + encodeURIComponent(segment.id); return; }
    const errorEl = document.getElementById("q-error");
    errorEl.textContent = LS.errorText(got.error);
    errorEl.hidden = false;
  });
});
