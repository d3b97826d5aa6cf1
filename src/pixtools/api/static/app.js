"use strict";
const form = document.getElementById("submit");
const jobsEl = document.getElementById("jobs");
const errEl = document.getElementById("submit-error");
const tracked = new Map();

function headers() {
  const key = form.elements.key.value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

async function fetchBlobUrl(url) {
  const resp = await fetch(url, { headers: headers() });
  if (!resp.ok) return null;
  return URL.createObjectURL(await resp.blob());
}

async function renderJob(job) {
  let box = document.getElementById("job-" + job.id);
  if (!box) {
    box = el("div", { class: "job", id: "job-" + job.id });
    jobsEl.prepend(box);
  }
  box.replaceChildren();
  box.append(el("div", {}, el("strong", {}, job.source.filename), " ",
    el("span", { class: "status " + job.status }, job.status), " ",
    `${job.source.width}×${job.source.height} ${job.source.format}`));
  if (job.error) box.append(el("div", { class: "error" }, job.error));
  const outs = el("div", { class: "outputs" });
  for (const o of job.outputs) {
    const card = el("div", { class: "output" }, el("div", {}, el("strong", {}, o.name), " ",
      el("span", { class: "status " + o.status }, o.status)));
    if (o.attempts > 1 || (o.error && o.error.includes("reconciler"))) {
      card.append(el("div", { class: "recovered" }, `recovered: attempt ${o.attempts}`));
    }
    if (o.error) card.append(el("div", { class: "error" }, o.error));
    if (o.url && o.content_type && o.content_type.startsWith("image/")) {
      const src = await fetchBlobUrl(o.url);
      if (src) card.append(el("a", { href: src, download: o.name }, el("img", { src, alt: o.name })));
      card.append(el("div", {}, `${o.width}×${o.height} ${o.format}, ${o.bytes} bytes`));
    }
    if (o.result) card.append(el("pre", {}, JSON.stringify(o.result, null, 1)));
    outs.append(card);
  }
  box.append(outs);
  if (job.archive && job.archive.url) {
    const link = el("a", { href: "#" }, "download ZIP");
    link.addEventListener("click", async (e) => {
      e.preventDefault();
      const u = await fetchBlobUrl(job.archive.url);
      if (u) { const a = el("a", { href: u, download: job.id + ".zip" }); a.click(); }
    });
    box.append(link);
  }
  if (job.metadata) box.append(el("details", {}, el("summary", {}, "metadata"), el("pre", {}, JSON.stringify(job.metadata, null, 1))));
}

async function poll(id) {
  const resp = await fetch("/api/v1/jobs/" + id, { headers: headers() });
  if (!resp.ok) return;
  const job = await resp.json();
  await renderJob(job);
  if (["queued", "running"].includes(job.status)) setTimeout(() => poll(id), 700);
  else tracked.delete(id);
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  errEl.textContent = "";
  const body = new FormData();
  body.append("file", form.elements.file.files[0]);
  body.append("spec", form.elements.spec.value);
  const resp = await fetch("/api/v1/jobs", { method: "POST", body, headers: headers() });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    errEl.textContent = `${resp.status}: ${data.detail || resp.statusText}`;
    return;
  }
  tracked.set(data.id, true);
  await renderJob(data);
  poll(data.id);
});

async function loadJobs() {
  const resp = await fetch("/api/v1/jobs?limit=10", { headers: headers() });
  if (!resp.ok) return;
  const page = await resp.json();
  for (const job of page.items.reverse()) {
    await renderJob(job);
    if (["queued", "running"].includes(job.status)) poll(job.id);
  }
}

async function loadOps() {
  const resp = await fetch("/api/v1/operations");
  if (!resp.ok) return;
  const ops = await resp.json();
  const list = el("ul");
  for (const op of ops) {
    const params = op.params.map((p) => p.name + (p.values ? ` (${p.values.join("|")})` : "")).join(", ");
    list.append(el("li", {}, el("code", {}, op.op), ` [${op.queue}] ${params}`));
  }
  document.getElementById("ops").append(list);
}

loadOps();
loadJobs();
