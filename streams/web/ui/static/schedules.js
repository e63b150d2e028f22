// The recurring refresh form.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("refresh-form");
  form.elements.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const all = form.querySelector('input[name="all"]').checked;
    const ids = Array.from(form.querySelectorAll('input[name="segment"]:checked')).map((c) => c.value);
    const body = { cron: form.elements.cron.value, timezone: form.elements.timezone.value };
    if (all) body.all = true; else body.segment_ids = ids;
    const got = await LS.api("POST", "/refresh-schedules", body);
    const errorEl = document.getElementById("refresh-error");
    if (got.ok) { LS.flash("Schedule added", "ok"); setTimeout(() => location.reload(), 400); return; }
    errorEl.textContent = LS.errorText(got.error);
    errorEl.hidden = false;
  });
});
