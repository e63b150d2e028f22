// Jobs: reload while a job is unfinished so badges and progress bars move.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const head = document.getElementById("job-head");
  if (head) {
    if (head.dataset.finished === "1") return;
    const id = head.dataset.job;
    const timer = setInterval(async () => {
      const got = await LS.api("GET", "/jobs/" + encodeURIComponent(id));
      if (!got.ok) return;
      const job = got.body;
      const bar = document.getElementById("job-progress");
      bar.max = job.progress.total || 1;
      bar.value = job.progress.done;
      document.getElementById("job-progress-text").textContent = job.progress.done + " of " + job.progress.total +
        " customers; " + job.partitions_done + " of " + job.partitions + " partitions done";
      const badge = document.querySelector("#job-status .badge");
      badge.textContent = job.status;
      badge.className = "badge badge-" + job.status.toLowerCase();
      if (job.finished_at) { clearInterval(timer); location.reload(); }
    }, 1000);
    return;
  }
  const running = document.querySelectorAll('#jobs tr[data-finished="0"]');
  if (running.length) setTimeout(() => location.reload(), 2000);
});
