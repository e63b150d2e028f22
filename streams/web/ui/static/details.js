// Segment details: the trend chart (inline SVG, tooltips on hover and focus) and actions.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const head = document.getElementById("segment-head");
  const id = head.dataset.segment, name = head.dataset.name;
  const enc = encodeURIComponent;
  const svg = document.getElementById("trend");
  const tooltip = document.getElementById("tooltip");
  const desc = document.getElementById("trend-desc");
  const NS = "http://www.w3.org/2000/svg";
  const FRAMES = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30, "90d": 24 * 90 };
  let frame = { from: Date.now() - FRAMES["24h"] * 3600e3, to: null, key: "24h" };

  function el(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function showTip(point, circle) {
    const when = new Date(point.at);
    tooltip.textContent = "";
    const strong = document.createElement("strong");
    strong.textContent = point.members + " members";
    const line = document.createElement("span");
    line.textContent = LS.fmt.format(when);
    line.title = LS.utc(point.at);
    tooltip.append(strong, document.createElement("br"), line);
    tooltip.hidden = false;
    const box = svg.getBoundingClientRect();
    const wrap = svg.parentElement.getBoundingClientRect();
    const cx = Number(circle.getAttribute("cx")) / width * box.width + (box.left - wrap.left);
    const cy = Number(circle.getAttribute("cy")) / 240 * box.height + (box.top - wrap.top);
    tooltip.style.left = Math.min(Math.max(cx - 70, 0), wrap.width - 150) + "px";
    tooltip.style.top = Math.max(cy - 64, 0) + "px";
  }

  let width = 800;
  function draw(points) {
    svg.replaceChildren();
    width = Math.max(320, Math.round(svg.clientWidth || 800));
    svg.setAttribute("viewBox", "0 0 " + width + " 240");
    if (!points.length) {
      const t = el("text", { x: width / 2, y: 120, "text-anchor": "middle", class: "chart-empty" });
      t.textContent = "No snapshots in this time frame";
      svg.appendChild(t);
      desc.textContent = "No snapshots in this time frame.";
      return;
    }
    const xs = points.map((p) => p.at), ys = points.map((p) => p.members);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    const yMax = Math.max(...ys, 1);
    const L = 50, R = width - 12, T = 14, B = 214;
    const sx = (x) => (x1 === x0 ? (L + R) / 2 : L + (x - x0) / (x1 - x0) * (R - L));
    const sy = (y) => B - y / yMax * (B - T);
    svg.appendChild(el("line", { x1: L, y1: B, x2: R, y2: B, class: "axis" }));
    for (const v of [0, Math.round(yMax / 2), yMax]) {
      const t = el("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", class: "tick" });
      t.textContent = v;
      svg.appendChild(t);
      svg.appendChild(el("line", { x1: L, y1: sy(v), x2: R, y2: sy(v), class: "grid" }));
    }
    for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
      const t = el("text", { x: sx(x), y: B + 20, "text-anchor": anchor, class: "tick" });
      t.textContent = LS.fmt.format(new Date(x));
      svg.appendChild(t);
    }
    svg.appendChild(el("polyline", {
      points: points.map((p) => sx(p.at) + "," + sy(p.members)).join(" "), class: "line" }));
    // at most ~200 focusable points: every k-th plus the last
    const step = Math.max(1, Math.ceil(points.length / 200));
    points.forEach((p, i) => {
      if (i % step !== 0 && i !== points.length - 1) return;
      const c = el("circle", { cx: sx(p.at), cy: sy(p.members), r: 4, class: "point", tabindex: 0,
        role: "img", "aria-label": p.members + " members at " + LS.fmt.format(new Date(p.at)) });
      c.addEventListener("mouseenter", () => showTip(p, c));
      c.addEventListener("focus", () => showTip(p, c));
      c.addEventListener("mouseleave", () => { tooltip.hidden = true; });
      c.addEventListener("blur", () => { tooltip.hidden = true; });
      svg.appendChild(c);
    });
    const last = points[points.length - 1];
    desc.textContent = points.length + " snapshots; min " + Math.min(...ys) + ", max " + yMax +
      ", last " + last.members + " at " + LS.fmt.format(new Date(last.at)) + ".";
  }

  async function load() {
    const q = "from=" + Math.round(frame.from) + (frame.to ? "&to=" + Math.round(frame.to) : "");
    const got = await LS.api("GET", "/segments/" + enc(id) + "/trend?" + q);
    if (!got.ok) { desc.textContent = "Trend not available: " + LS.errorText(got.error); return; }
    draw(got.body.points);
  }

  document.querySelectorAll("[data-frame]").forEach((button) => {
    button.addEventListener("click", () => {
      document.querySelectorAll("[data-frame]").forEach((b) => b.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      const key = button.dataset.frame;
      const custom = document.getElementById("custom-frame");
      custom.hidden = key !== "custom";
      if (key === "custom") { custom.querySelector("input").focus(); return; }
      frame = { from: Date.now() - FRAMES[key] * 3600e3, to: null, key };
      load();
    });
  });
  document.getElementById("custom-frame").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const from = new Date(f.from.value).getTime(), to = new Date(f.to.value).getTime();
    if (!(from < to)) { desc.textContent = "The custom time frame must start before it ends."; return; }
    frame = { from, to, key: "custom" };
    load();
  });
  load();
  setInterval(async () => {
    if (frame.key !== "custom") { frame.from = Date.now() - FRAMES[frame.key] * 3600e3; }
    if (document.activeElement && document.activeElement.classList.contains("point")) return;
    if (!tooltip.hidden) return;
    load();
    const seg = await LS.api("GET", "/segments/" + enc(id));
    if (seg.ok) document.getElementById("member-count").textContent = seg.body.members;
  }, 5000);

  async function report(what, result, reload) {
    if (!result) return;
    if (result.ok) { LS.flash(what + " done", "ok"); if (reload) setTimeout(() => location.reload(), 400); }
    else LS.flash(what + " failed: " + LS.errorText(result.error), "error");
  }
  document.querySelectorAll("button[data-act]").forEach((button) => {
    button.addEventListener("click", async () => {
      const act = button.dataset.act;
      if (act === "refresh") return report("Refresh", await LS.actions.refresh([id]), true);
      if (act === "schedule") return report("Schedule", await LS.actions.schedule(id, button.dataset.action), true);
      return report(act, await LS.actions[act](id), true);
    });
  });
  document.querySelectorAll("[data-unschedule]").forEach((button) => {
    button.addEventListener("click", async () => {
      report("Remove schedule", await LS.api("DELETE", "/schedules/" + enc(button.dataset.unschedule)), true);
    });
  });
});
