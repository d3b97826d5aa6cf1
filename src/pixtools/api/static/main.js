// The page: picks files, builds a spec, submits one job per file, and shows the jobs.

import { el, announce, copyText } from "./dom.js";
import { api, getKey, setKey, ApiError } from "./api.js";
import { inspect, exifSummary, formatBytes } from "./inspect.js";
import { Builder, NAME_PATTERN } from "./builder.js";
import { PRESETS } from "./presets.js";
import { JobList } from "./jobs.js";
import { initViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const sources = []; // { file, format, exif, url, width, height }
let limits = { max_upload_bytes: Infinity }; // from GET /api/v1/config once loaded

function specFromPage(builder) {
  const spec = { outputs: builder.spec.outputs };
  if ($("opt-metadata").checked) spec.metadata = true;
  if ($("opt-archive").checked) spec.archive = true;
  const hook = $("opt-webhook").value.trim();
  if (hook) spec.webhook_url = hook;
  return spec;
}

function applySpecToOptions(spec) {
  $("opt-metadata").checked = Boolean(spec.metadata);
  $("opt-archive").checked = Boolean(spec.archive);
  $("opt-webhook").value = spec.webhook_url || "";
}

// --- sources ----------------------------------------------------------------------------

function renderSources() {
  const list = $("sources");
  list.replaceChildren(...sources.map((s, i) => el("li", { class: "source" },
    s.width ? el("img", { src: s.url, alt: "" }) : el("span", { class: "placeholder" }, s.format || "?"),
    el("div", {},
      el("strong", {}, s.file.name),
      el("p", { class: "meta" }, [
        (s.format || "unknown format").toUpperCase(),
        s.width ? `${s.width}×${s.height}` : "dimensions: decoded by the server",
        formatBytes(s.file.size),
      ].join(" · ")),
      s.exif ? el("p", { class: "meta exif" }, exifSummary(s.exif) || "EXIF present") : el("p", { class: "meta" }, "no EXIF"),
      s.format ? null : el("p", { class: "error" }, "Not an image this service reads."),
      s.file.size > limits.max_upload_bytes ? el("p", { class: "error" }, `Larger than this server accepts (${formatBytes(limits.max_upload_bytes)}).`) : null),
    el("button", {
      type: "button", class: "icon danger", "aria-label": `Remove ${s.file.name}`,
      onclick: () => { const [gone] = sources.splice(i, 1); URL.revokeObjectURL(gone.url); renderSources(); },
    }, "✕"))));
  $("submit").textContent = sources.length > 1 ? `Process ${sources.length} images` : "Process";
}

async function addFiles(files) {
  const picked = [...files].filter((f) => f.size > 0);
  for (const file of picked) sources.push(await inspect(file));
  renderSources();
  if (picked.length) announce(`${picked.length} image${picked.length === 1 ? "" : "s"} ready`);
}

function initInput() {
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      if (![...e.dataTransfer.types].includes("Files")) return;
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (!files.length) return; // text pasted into a field stays text
    e.preventDefault();
    addFiles(files.map((f, i) => (f.name && f.name !== "image.png" ? f : new File([f], `pasted-${Date.now()}-${i}.${(f.type.split("/")[1] || "png")}`, { type: f.type }))));
  });
}

// --- snippets ---------------------------------------------------------------------------

function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function curlSnippet(spec) {
  const name = sources[0]?.file.name || "image.jpg";
  return [
    `curl -sS -X POST ${shellQuote(location.origin + "/api/v1/jobs")} \\`,
    getKey() ? `  -H "Authorization: Bearer $PIXTOOLS_API_KEY" \\` : null,
    `  -F ${shellQuote("file=@" + name)} \\`,
    `  -F ${shellQuote("spec=" + JSON.stringify(spec))}`,
  ].filter(Boolean).join("\n");
}

function pythonSnippet(spec) {
  const name = sources[0]?.file.name || "image.jpg";
  return [
    "import json, os",
    "import httpx",
    "",
    `spec = json.loads(${JSON.stringify(JSON.stringify(spec, null, 1))})`,
    `with open(${JSON.stringify(name)}, "rb") as f:`,
    "    resp = httpx.post(",
    `        ${JSON.stringify(location.origin + "/api/v1/jobs")},`,
    getKey() ? '        headers={"Authorization": "Bearer " + os.environ["PIXTOOLS_API_KEY"]},' : null,
    `        files={"file": (${JSON.stringify(name)}, f)},`,
    '        data={"spec": json.dumps(spec)},',
    "    )",
    "resp.raise_for_status()",
    'print(resp.json()["id"])',
  ].filter((l) => l !== null).join("\n");
}

// --- submit -----------------------------------------------------------------------------

function validate(spec) {
  if (!sources.length) return "file: choose, drop or paste an image first";
  if (!spec.outputs.length) return "outputs: add at least one output";
  const bad = spec.outputs.findIndex((o) => !NAME_PATTERN.test(o.name));
  if (bad >= 0) return `outputs[${bad}].name: lower-case letters, digits, - and _ (up to 64)`;
  return null;
}

async function submit(builder, jobs) {
  const errorEl = $("submit-error");
  errorEl.textContent = "";
  const spec = specFromPage(builder);
  const problem = validate(spec);
  if (problem) {
    errorEl.textContent = problem;
    return;
  }
  const button = $("submit");
  button.disabled = true;
  const batch = sources.splice(0, sources.length);
  renderSources();
  let sent = 0;
  const failed = [];
  for (const s of batch) {
    const body = new FormData();
    body.append("file", s.file, s.file.name);
    body.append("spec", JSON.stringify(spec));
    try {
      const job = await api("/api/v1/jobs", { method: "POST", body });
      jobs.add(job, true, s.url);
      sent++;
    } catch (err) {
      failed.push(s);
      errorEl.textContent = `${s.file.name}: ${err instanceof ApiError ? err.detail : err}`;
    }
  }
  sources.push(...failed); // what was refused stays, to fix and send again
  renderSources();
  button.disabled = false;
  announce(`${sent} job${sent === 1 ? "" : "s"} submitted${failed.length ? `, ${failed.length} refused` : ""}`);
}

// --- start ------------------------------------------------------------------------------

async function start() {
  initViewer();
  initInput();
  const keyInput = $("api-key");
  keyInput.value = getKey();
  let config;
  let ops;
  try {
    [config, ops] = await Promise.all([api("/api/v1/config"), api("/api/v1/operations")]);
  } catch (err) {
    $("submit-error").textContent = `cannot reach the API: ${err.message}`;
    return;
  }
  limits = config;
  renderSources();
  if (!config.webhooks_enabled) {
    const hook = $("opt-webhook");
    hook.disabled = true;
    hook.placeholder = "webhooks are off on this server (no signing secret)";
  }
  const jobs = new JobList({ container: $("jobs"), moreButton: $("more"), errorEl: $("jobs-error"), config });
  const json = $("spec-json");
  const jsonError = $("spec-json-error");
  const builder = new Builder({
    ops,
    listEl: $("outputs"),
    onChange: () => {
      if (document.activeElement !== json) json.value = JSON.stringify(specFromPage(builder), null, 2);
    },
  });
  const syncJson = () => (json.value = JSON.stringify(specFromPage(builder), null, 2));
  json.addEventListener("input", () => {
    try {
      const spec = JSON.parse(json.value);
      if (!spec || typeof spec !== "object" || !Array.isArray(spec.outputs)) throw new Error("outputs: a list is required");
      spec.outputs.forEach((o, i) => {
        if (!o || typeof o.name !== "string" || !Array.isArray(o.steps)) throw new Error(`outputs[${i}]: needs a name and a list of steps`);
        o.steps.forEach((s, j) => {
          if (!s || typeof s.op !== "string") throw new Error(`outputs[${i}].steps[${j}].op: required`);
        });
      });
      jsonError.textContent = "";
      json.setAttribute("aria-invalid", "false");
      applySpecToOptions(spec);
      builder.setSpec({ outputs: spec.outputs }, { notify: false });
    } catch (err) {
      jsonError.textContent = `Not applied: ${err.message}`;
      json.setAttribute("aria-invalid", "true");
    }
  });
  json.addEventListener("blur", () => { if (!jsonError.textContent) syncJson(); });
  for (const id of ["opt-metadata", "opt-archive", "opt-webhook"]) $(id).addEventListener("input", syncJson);

  $("presets").append(...PRESETS.map((p) => el("button", {
    type: "button", class: "secondary", "data-preset": p.id,
    onclick: () => {
      const spec = p.spec();
      applySpecToOptions(spec);
      builder.setSpec({ outputs: spec.outputs });
      announce(`Preset ${p.label}: ${spec.outputs.length} outputs`);
    },
  }, p.label)));
  $("add-output").addEventListener("click", () => builder.addOutput());

  const snippet = $("snippet");
  const copy = async (text, what) => {
    snippet.hidden = false;
    snippet.textContent = text;
    announce((await copyText(text)) ? `${what} copied` : `${what} shown below: copy it by hand`);
  };
  $("copy-curl").addEventListener("click", () => copy(curlSnippet(specFromPage(builder)), "curl command"));
  $("copy-python").addEventListener("click", () => copy(pythonSnippet(specFromPage(builder)), "Python code"));
  $("submit").addEventListener("click", () => submit(builder, jobs));

  const filters = () => ({ status: $("filter-status").value, q: $("filter-q").value.trim() });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filter-status").addEventListener("change", () => jobs.setFilters(filters()));
  let typing = null;
  $("filter-q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => jobs.setFilters(filters()), 300);
  });
  keyInput.addEventListener("change", () => {
    setKey(keyInput.value);
    announce(keyInput.value ? "API key set for this tab" : "API key cleared");
    jobs.load(true);
  });

  const first = PRESETS[1].spec();
  builder.setSpec({ outputs: first.outputs });
  jobs.load(true);
  document.body.dataset.ready = "true";
}

start();

