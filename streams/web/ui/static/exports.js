// The "Add export" form: the destination's fields by type, errors next to their field.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("export-form");
  if (!form) return;
  const type = form.elements.type;
  function showDest() {
    form.querySelectorAll(".dest").forEach((el) => { el.hidden = !el.classList.contains("dest-" + type.value); });
  }
  type.addEventListener("change", showDest);
  showDest();
  const list = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    const f = form.elements;
    const destination = { type: type.value };
    if (type.value === "files") { destination.directory = f.directory.value; destination.format = f.format.value; }
    if (type.value === "kafka") destination.topic = f.topic.value;
    if (type.value === "webhook") { destination.url = f.url.value; if (f.secret.value) destination.secret = f.secret.value; }
    const body = { id: f.id.value.trim(), name: f.name.value, segments: list(f.segments.value),
      attributes: f.attributes.value.trim() ? list(f.attributes.value) : null, destination };
    const got = await LS.api("POST", "/exports", { export: body });
    const errorEl = document.getElementById("export-error");
    if (got.ok) { LS.flash("Export " + body.id + " added", "ok"); setTimeout(() => location.reload(), 400); return; }
    errorEl.textContent = LS.errorText(got.error);
    errorEl.hidden = false;
    const path = (got.error.path || "").replace(/^export\./, "");
    const target = path && (form.querySelector('[data-path="' + CSS.escape(path) + '"]') ||
      form.querySelector('[data-path="' + CSS.escape(path.replace(/\[\d+\]$/, "")) + '"]'));
    if (target) {
      const p = document.createElement("p");
      p.className = "field-error error";
      p.textContent = got.error.message;
      target.after(p);
      target.setAttribute("aria-invalid", "true");
      target.focus();
    }
  });
});
