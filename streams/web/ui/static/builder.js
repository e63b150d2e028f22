// The segment builder: a form over the definition, a JSON/YAML view kept in sync, a live
// estimate, and the API's errors shown next to the field their `path` names.
"use strict";

const KINDS = {
  text: ["eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists"],
  number: ["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists", "not_exists"],
  boolean: ["eq", "ne", "exists", "not_exists"],
  date: ["before", "after", "within_last", "not_within_last", "exists", "not_exists"],
  list: ["contains", "not_contains", "exists", "not_exists"],
};
const EVENT_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "between"];
const AGGS = ["count", "sum", "avg", "min", "max", "distinct_count"];
const RULE_OPS = ["union", "intersect", "except"];
const OP_LABELS = { eq: "equals", ne: "does not equal", lt: "<", lte: "≤", gt: ">", gte: "≥",
  between: "between", in: "is one of", not_in: "is none of", contains: "contains",
  not_contains: "does not contain", starts_with: "starts with", ends_with: "ends with",
  exists: "exists", not_exists: "does not exist", before: "before", after: "after",
  within_last: "within the last", not_within_last: "not within the last" };

document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const editing = data.editing;
  let def = data.definition || { id: "", name: "", rules: [{ where: { all: [{ attr: "", op: "eq", value: "" }] } }] };
  const kinds = new WeakMap();
  const rulesEl = document.getElementById("rules");
  const textEl = document.getElementById("def-text");
  const textError = document.getElementById("text-error");
  const estimateEl = document.getElementById("estimate");
  let counter = 0;
  document.getElementById("builder").addEventListener("submit", (ev) => ev.preventDefault());

  // -- small DOM helpers -----------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  function field(label, control) {
    const id = "f" + (++counter);
    control.id = id;
    return h("span", { class: "field" }, h("label", { for: id }, label), control);
  }
  function select(options, value, path, onchange, labels) {
    const s = h("select", { dataset: { path }, onchange: (e) => onchange(e.target.value) },
      ...options.map((o) => h("option", { value: o, selected: o === value }, (labels && labels[o]) || o)));
    return s;
  }
  function input(value, path, oninput, attrs) {
    return h("input", { value: value === undefined || value === null ? "" : String(value), dataset: { path },
      autocomplete: "off", oninput: (e) => oninput(e.target.value), ...(attrs || {}) });
  }

  function kindOf(node) {
    if (kinds.has(node)) return kinds.get(node);
    let kind = "text";
    if (["before", "after", "within_last", "not_within_last"].includes(node.op)) kind = "date";
    else if (typeof node.value === "boolean") kind = "boolean";
    else if (typeof node.value === "number" || node.op === "between" || ["lt", "lte", "gt", "gte"].includes(node.op)) kind = "number";
    else if (Array.isArray(node.value) && node.value.some((v) => typeof v === "number")) kind = "number";
    kinds.set(node, kind);
    return kind;
  }
  function scalar(raw, kind) {
    if (kind === "number") { const n = Number(raw); return raw.trim() !== "" && !Number.isNaN(n) ? n : raw; }
    if (kind === "boolean") return raw === "true";
    return raw;
  }

  // the value control(s) of a condition with `op` on `node` (attribute, property or event)
  function valueControls(node, path, kind) {
    const op = node.op;
    if (op === "exists" || op === "not_exists") { delete node.value; return []; }
    if (op === "between") {
      if (!Array.isArray(node.value)) node.value = [0, 0];
      return [
        field("from", input(node.value[0], path + ".value[0]", (v) => { node.value[0] = scalar(v, "number"); sync(); }, { inputmode: "decimal" })),
        field("to", input(node.value[1], path + ".value[1]", (v) => { node.value[1] = scalar(v, "number"); sync(); }, { inputmode: "decimal" })),
      ];
    }
    if (op === "in" || op === "not_in") {
      if (!Array.isArray(node.value)) node.value = node.value === undefined || node.value === "" ? [] : [node.value];
      return [field("values (comma-separated)", input(node.value.join(", "), path + ".value", (v) => {
        node.value = v.split(",").map((x) => x.trim()).filter((x) => x !== "").map((x) => scalar(x, kind));
        sync();
      }))];
    }
    if (Array.isArray(node.value)) node.value = node.value.length ? node.value[0] : "";
    if (kind === "boolean" && (op === "eq" || op === "ne")) {
      if (typeof node.value !== "boolean") node.value = true;
      return [field("value", select(["true", "false"], String(node.value), path + ".value", (v) => { node.value = v === "true"; sync(); }))];
    }
    if (node.value === undefined) node.value = "";
    const hint = op === "within_last" || op === "not_within_last" ? "e.g. 7d" : op === "before" || op === "after" ? "e.g. 2030-01-01" : "";
    return [field("value", input(node.value, path + ".value", (v) => { node.value = scalar(v, kind); sync(); },
      { placeholder: hint, inputmode: kind === "number" ? "decimal" : undefined }))];
  }

  function removeButton(label, onremove) {
    return h("button", { type: "button", class: "icon", "aria-label": label, onclick: onremove }, "✕");
  }

  // one condition node; `replace(newNode)` swaps it in its parent, `remove` drops it (or null)
  function renderNode(node, path, replace, remove) {
    if (node.all || node.any || node.not !== undefined) return renderGroup(node, path, replace, remove);
    let box;
    if (node.event !== undefined) box = renderEvent(node, path);
    else if (node.in_segment !== undefined) {
      box = h("div", { class: "cond-row", role: "group", "aria-label": "In segment" },
        h("span", { class: "cond-kind" }, "In segment"),
        field("segment", input(node.in_segment, path + ".in_segment", (v) => { node.in_segment = v; sync(); }, { list: "segment-ids" })));
    } else box = renderAttr(node, path);
    if (remove) box.append(removeButton("Remove this condition", remove));
    if (!remove && replace && path.endsWith(".where")) box.append(h("button", { type: "button", class: "link", onclick: () => { replace({ all: [node] }); } }, "Wrap in group"));
    return box;
  }

  function renderAttr(node, path) {
    const kind = kindOf(node);
    const ops = KINDS[kind];
    if (!ops.includes(node.op)) node.op = ops[0];
    return h("div", { class: "cond-row", role: "group", "aria-label": "Attribute condition" },
      h("span", { class: "cond-kind" }, "Attribute"),
      field("attribute", input(node.attr, path + ".attr", (v) => { node.attr = v; sync(); }, { placeholder: "e.g. country" })),
      field("kind", select(Object.keys(KINDS), kind, path + ".kind", (v) => { kinds.set(node, v); rerender(); })),
      field("operator", select(ops, node.op, path + ".op", (v) => { node.op = v; rerender(); }, OP_LABELS)),
      ...valueControls(node, path, kind));
  }

  function renderEvent(node, path) {
    const controls = [
      h("span", { class: "cond-kind" }, "Event aggregate"),
      field("event type", input(node.event, path + ".event", (v) => { node.event = v; sync(); }, { placeholder: "e.g. purchase" })),
      field("aggregate", select(AGGS, node.agg, path + ".agg", (v) => {
        node.agg = v;
        if (v === "count") delete node.prop; else if (node.prop === undefined) node.prop = "";
        rerender();
      })),
    ];
    if (node.agg !== "count") controls.push(field("of property", input(node.prop, path + ".prop", (v) => { node.prop = v; sync(); }, { placeholder: "e.g. amount" })));
    controls.push(field("within (window)", input(node.within, path + ".within", (v) => {
      if (v.trim() === "") delete node.within; else node.within = v.trim();
      sync();
    }, { placeholder: "e.g. 30d; empty: all history" })));
    if (!EVENT_OPS.includes(node.op)) node.op = "gte";
    controls.push(field("operator", select(EVENT_OPS, node.op, path + ".op", (v) => { node.op = v; rerender(); }, OP_LABELS)));
    controls.push(...valueControls(node, path, "number"));
    const box = h("div", { class: "cond-row event", role: "group", "aria-label": "Event aggregate condition" }, ...controls);
    box.append(renderFilter(node, path));
    return box;
  }

  // an event's filter as rows of property conditions joined by "all"
  function renderFilter(node, path) {
    const wrap = h("div", { class: "filter", role: "group", "aria-label": "Event filter" });
    let rows;
    let rowPath;
    if (node.filter === undefined) rows = [];
    else if (node.filter.prop !== undefined) { rows = [node.filter]; rowPath = () => path + ".filter"; }
    else if (node.filter.all && node.filter.all.every((c) => c.prop !== undefined)) { rows = node.filter.all; rowPath = (i) => path + ".filter.all[" + i + "]"; }
    else {
      wrap.append(h("p", { class: "muted", dataset: { path: path + ".filter" } }, "This filter is edited in the text view."));
      return wrap;
    }
    const store = (list) => {
      if (list.length === 0) delete node.filter;
      else if (list.length === 1) node.filter = list[0];
      else node.filter = { all: list };
      rerender();
    };
    rows.forEach((cond, i) => {
      const p = rowPath(i);
      const kind = kindOf(cond);
      const ops = KINDS[kind];
      if (!ops.includes(cond.op)) cond.op = ops[0];
      wrap.append(h("div", { class: "cond-row" }, h("span", { class: "cond-kind" }, i === 0 ? "where" : "and"),
        field("property", input(cond.prop, p + ".prop", (v) => { cond.prop = v; sync(); })),
        field("kind", select(Object.keys(KINDS), kind, p + ".kind", (v) => { kinds.set(cond, v); rerender(); })),
        field("operator", select(ops, cond.op, p + ".op", (v) => { cond.op = v; rerender(); }, OP_LABELS)),
        ...valueControls(cond, p, kind),
        removeButton("Remove this filter condition", () => store(rows.filter((_, j) => j !== i)))));
    });
    wrap.append(h("button", { type: "button", class: "link", onclick: () => store([...rows, { prop: "", op: "eq", value: "" }]) }, "+ Filter on a property"));
    return wrap;
  }

  function renderGroup(node, path, replace, remove) {
    const type = node.all ? "all" : node.any ? "any" : "not";
    const children = type === "not" ? [node.not] : node[type];
    const childPath = (i) => (type === "not" ? path + ".not" : path + "." + type + "[" + i + "]");
    const box = h("fieldset", { class: "group-box" });
    const legend = h("legend", {});
    legend.append(field("match", select(["all", "any", "not"], type, path + ".group", (v) => {
      if (v === type) return;
      const list = type === "not" ? [node.not] : node[type];
      const next = v === "not" ? { not: list.length === 1 ? list[0] : { all: list } } : { [v]: list };
      replace(next);
    }, { all: "All of these", any: "Any of these", not: "Not this" })));
    if (remove) legend.append(removeButton("Remove this group", remove));
    box.append(legend);
    children.forEach((child, i) => {
      const setChild = (n) => { if (type === "not") node.not = n; else node[type][i] = n; rerender(); };
      const dropChild = type === "not" || children.length < 2 ? null : () => { node[type].splice(i, 1); rerender(); };
      box.append(renderNode(child, childPath(i), setChild, dropChild));
    });
    if (type !== "not") {
      const add = (n) => { node[type].push(n); rerender(); };
      box.append(h("div", { class: "adders" },
        h("button", { type: "button", onclick: () => add({ attr: "", op: "eq", value: "" }) }, "+ Attribute"),
        h("button", { type: "button", onclick: () => add({ event: "", agg: "count", within: "30d", op: "gte", value: 1 }) }, "+ Event aggregate"),
        h("button", { type: "button", onclick: () => add({ in_segment: "" }) }, "+ In segment"),
        h("button", { type: "button", onclick: () => add({ any: [{ attr: "", op: "eq", value: "" }] }) }, "+ Group")));
    }
    return box;
  }

  function renderRules() {
    rulesEl.replaceChildren();
    def.rules = Array.isArray(def.rules) ? def.rules : [];
    def.rules.forEach((rule, i) => {
      const path = "rules[" + i + "]";
      const box = h("section", { class: "rule", "aria-label": "Rule " + (i + 1) });
      const head = h("div", { class: "rule-head" }, h("h4", {}, "Rule " + (i + 1)));
      if (i > 0) {
        if (!RULE_OPS.includes(rule.op)) rule.op = "union";
        head.append(field("joined by", select(RULE_OPS, rule.op, path + ".op", (v) => { rule.op = v; sync(); },
          { union: "union (or)", intersect: "intersect (and)", except: "except (and not)" })));
      } else delete rule.op;
      if (def.rules.length > 1) head.append(removeButton("Remove rule " + (i + 1), () => { def.rules.splice(i, 1); rerender(); }));
      box.append(head);
      if (rule.where === undefined) rule.where = { all: [{ attr: "", op: "eq", value: "" }] };
      box.append(renderNode(rule.where, path + ".where", (n) => { rule.where = n; rerender(); }, null));
      rulesEl.append(box);
    });
  }

  function fillMeta() {
    document.querySelectorAll("[data-meta]").forEach((el) => {
      const key = el.dataset.meta;
      const v = def[key];
      el.value = key === "tags" ? (v || []).join(", ") : v === undefined || v === null ? (key === "type" ? "dynamic" : "") : v;
    });
  }
  document.querySelectorAll("[data-meta]").forEach((el) => {
    el.addEventListener("input", () => {
      const key = el.dataset.meta;
      const v = el.value;
      if (key === "tags") { const tags = v.split(",").map((t) => t.trim()).filter(Boolean); if (tags.length) def.tags = tags; else delete def.tags; }
      else if ((key === "description") && v === "") delete def.description;
      else if (key === "type" && v === "dynamic" && def.type === undefined) { /* default */ }
      else def[key] = v;
      sync();
    });
  });

  // -- keep the text view, the estimate and the errors in step -----------------------------
  function rerender() {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.path : null;
    renderRules();
    if (focused) { const again = document.querySelector('[data-path="' + CSS.escape(focused) + '"]'); if (again) again.focus(); }
    sync();
  }
  const fmt = () => document.querySelector('input[name="fmt"]:checked').value;
  async function writeText() {
    if (fmt() === "json") { textEl.value = JSON.stringify(def, null, 2); return; }
    const got = await LS.api("POST", "/ui/data/convert", { to: "yaml", value: def });
    if (got.ok) textEl.value = got.body.text;
  }
  let estimateTimer = null;
  function sync() {
    clearErrors();
    if (document.activeElement !== textEl) writeText();
    clearTimeout(estimateTimer);
    estimateTimer = setTimeout(estimate, 450);
  }

  function clearErrors() {
    document.querySelectorAll(".field-error").forEach((e) => e.remove());
    document.querySelectorAll("[aria-invalid]").forEach((e) => { e.removeAttribute("aria-invalid"); e.removeAttribute("aria-describedby"); });
    document.getElementById("form-error").hidden = true;
  }
  // show an API error next to the field its path names (or the closest enclosing one)
  function showError(error) {
    let path = (error.path || "").replace(/^segment\.?/, "");
    let target = null;
    while (path) {
      target = document.querySelector('[data-path="' + CSS.escape(path) + '"]');
      if (target) break;
      const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
      path = cut > 0 ? path.slice(0, cut) : "";
    }
    if (!target) {
      const top = document.getElementById("form-error");
      top.textContent = LS.errorText(error);
      top.hidden = false;
      return;
    }
    const id = "err" + (++counter);
    const msg = h("p", { class: "field-error error", role: "alert", id }, error.message);
    target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-describedby", id);
    const holder = target.closest(".field");
    if (holder) holder.append(msg); else target.after(msg);
  }

  let estimateSeq = 0;
  async function estimate() {
    const seq = ++estimateSeq;
    estimateEl.textContent = "estimating…";
    const got = await LS.api("POST", "/segments/estimate", { segment: def });
    if (seq !== estimateSeq) return;
    if (got.ok) {
      const b = got.body;
      const pct = b.customers ? (100 * b.estimate / b.customers).toFixed(1) : "0.0";
      estimateEl.className = "estimate";
      estimateEl.textContent = b.estimate + " of " + b.customers + " customers (" + pct + "%), computed in " + b.elapsed_ms + " ms";
    } else {
      estimateEl.className = "estimate muted";
      estimateEl.textContent = "No estimate: " + LS.errorText(got.error);
      showError(got.error);
    }
  }

  let textTimer = null;
  textEl.addEventListener("input", () => {
    clearTimeout(textTimer);
    textTimer = setTimeout(async () => {
      let value;
      if (fmt() === "json") {
        try { value = JSON.parse(textEl.value); } catch (e) { textError.textContent = "The JSON does not parse: " + e.message; textError.hidden = false; return; }
      } else {
        const got = await LS.api("POST", "/ui/data/convert", { to: "json", text: textEl.value });
        if (!got.ok) { textError.textContent = LS.errorText(got.error); textError.hidden = false; return; }
        value = got.body.value;
      }
      if (!value || typeof value !== "object" || Array.isArray(value)) { textError.textContent = "The definition must be an object."; textError.hidden = false; return; }
      textError.hidden = true;
      def = value;
      fillMeta();
      renderRules();
      clearErrors();
      clearTimeout(estimateTimer);
      estimateTimer = setTimeout(estimate, 300);
    }, 400);
  });
  document.querySelectorAll('input[name="fmt"]').forEach((r) => r.addEventListener("change", writeText));

  document.getElementById("add-rule").addEventListener("click", () => {
    def.rules.push({ op: "union", where: { all: [{ attr: "", op: "eq", value: "" }] } });
    rerender();
  });

  async function save(activate) {
    clearErrors();
    let got;
    if (editing) {
      got = await LS.api("PUT", "/segments/" + encodeURIComponent(editing), { segment: def });
      if (got.ok && activate && !data.active) got = await LS.api("POST", "/segments/" + encodeURIComponent(editing) + "/activate");
    } else {
      got = await LS.api("POST", "/segments", { segment: def, activate });
    }
    if (!got.ok) { showError(got.error); LS.flash("Not saved: " + LS.errorText(got.error), "error"); return; }
    location = "/ui/segments/" + encodeURIComponent(def.id);
  }
  document.getElementById("save-draft").addEventListener("click", () => save(false));
  document.getElementById("save-activate").addEventListener("click", () => save(true));

  fillMeta();
  renderRules();
  sync();
});
