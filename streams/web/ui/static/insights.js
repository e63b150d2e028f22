// The details page's insights: exact overlap with chosen segments, and differentiators.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const segment = $("segment-head").dataset.segment;

  function table(caption, headers, rows, id) {
    const t = document.createElement("table");
    t.className = "data";
    if (id) t.id = id;
    t.createCaption().textContent = caption;
    const head = t.createTHead().insertRow();
    headers.forEach((h) => { const th = document.createElement("th"); th.scope = "col"; th.textContent = h; head.appendChild(th); });
    const body = t.createTBody();
    rows.forEach((r) => { const tr = body.insertRow(); r.forEach((c) => { tr.insertCell().textContent = String(c); }); });
    return t;
  }

  function failed(error) {
    const e = $("insights-error");
    e.textContent = LS.errorText(error);
    e.hidden = false;
  }

  $("overlap-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("insights-error").hidden = true;
    const chosen = Array.from($("overlap-with").selectedOptions).map((o) => o.value);
    const got = await LS.api("POST", "/insights/overlap", { segment_ids: [segment, ...chosen] });
    const box = $("overlap");
    box.textContent = "";
    if (!got.ok) { failed(got.error); return; }
    const pct = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(1) + " %");
    box.appendChild(table("Overlap (exact, " + got.body.union + " customers in the union)",
      ["Region", "Customers", "Share of the union"],
      got.body.regions.map((r) => [r.label, r.customers, pct(r.percent_of_union)]), "overlap-table"));
  });

  $("diff-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("insights-error").hidden = true;
    const vs = $("diff-vs").value;
    const got = await LS.api("GET", "/segments/" + enc(segment) + "/differentiators" + (vs ? "?vs=" + enc(vs) : ""));
    const box = $("differentiators");
    box.textContent = "";
    if (!got.ok) { failed(got.error); return; }
    box.appendChild(table("What sets " + segment + " apart from " + got.body.vs,
      ["Feature", "Effect", "Size", "Values that differ"],
      got.body.differentiators.map((d) => [d.feature, Number(d.effect_size).toFixed(2), d.magnitude || "",
        (d.values || []).map((v) => v.text).join("; ") || d.text || ""]), "diff-table"));
  });
})();
