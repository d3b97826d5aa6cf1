// The enlarged view: an output at full size, or before/after against the source with a
// slider, or an analysis drawn over the source. It owns its object URLs until closed.

import { el } from "./dom.js";
import { fetchBlob, proxied } from "./api.js";
import { boxedImage, resultBoxes } from "./results.js";

const dialog = () => document.getElementById("viewer");
let urls = [];
let controller = null;
let current = null;

function release() {
  if (controller) controller.abort();
  controller = null;
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
}

async function blobUrl(path) {
  const url = URL.createObjectURL(await fetchBlob(path, controller.signal));
  urls.push(url);
  return url;
}

function setMode(mode) {
  const d = dialog();
  d.querySelector("#mode-output").setAttribute("aria-pressed", String(mode === "output"));
  d.querySelector("#mode-compare").setAttribute("aria-pressed", String(mode === "compare"));
  const range = d.querySelector("#compare-range");
  range.hidden = mode !== "compare";
  d.querySelector("#compare-label").hidden = mode !== "compare";
  render(mode);
}

async function render(mode) {
  const { job, output, sourceUrl } = current;
  const body = dialog().querySelector("#viewer-body");
  const info = dialog().querySelector("#viewer-info");
  body.replaceChildren(el("p", { class: "hint" }, "Loading…"));
  try {
    if (!output.url) {
      // An analysis: its boxes over the source.
      const src = sourceUrl || (await blobUrl(`/api/v1/jobs/${job.id}/source/preview`));
      body.replaceChildren(boxedImage(src, job.source.width, job.source.height, resultBoxes(output.result), `${output.name} over ${job.source.filename}`));
      const n = resultBoxes(output.result).length;
      info.textContent = `${n} box${n === 1 ? "" : "es"} on the source (${job.source.width}×${job.source.height})`;
      return;
    }
    const after = await blobUrl(proxied(output.url));
    if (mode === "compare") {
      const before = sourceUrl || (await blobUrl(`/api/v1/jobs/${job.id}/source/preview`));
      const stack = el("div", { class: "compare", id: "compare" },
        el("img", { src: before, alt: `Before: ${job.source.filename}`, class: "before" }),
        el("img", { src: after, alt: `After: ${output.name}`, class: "after" }),
        el("div", { class: "divider", "aria-hidden": "true" }));
      body.replaceChildren(stack);
      applySplit();
      info.textContent = `Left: the source (${job.source.width}×${job.source.height}, ${job.source.format}); right: ${output.name} (${output.width}×${output.height}, ${output.format}).`;
    } else {
      body.replaceChildren(el("img", { src: after, alt: output.name, class: "full" }));
      info.textContent = `${output.name}: ${output.width}×${output.height} ${output.format}`;
    }
  } catch (err) {
    if (err.name !== "AbortError") body.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
  }
}

function applySplit() {
  const stack = document.getElementById("compare");
  const value = dialog().querySelector("#compare-range").value;
  // CSSOM, not a style attribute: allowed by the page's CSP (style-src 'self').
  if (stack) stack.style.setProperty("--split", `${value}%`);
}

/** Open the viewer on one output; `sourceUrl` is the local file when this tab uploaded it. */
export function openViewer(job, output, sourceUrl, mode = "output") {
  release();
  controller = new AbortController();
  current = { job, output, sourceUrl };
  const d = dialog();
  d.querySelector("#viewer-title").textContent = `${job.source.filename} → ${output.name}`;
  d.querySelector("#mode-compare").disabled = !output.url;
  d.querySelector("#mode-output").disabled = false;
  if (!d.open) d.showModal();
  setMode(output.url ? mode : "output");
}

export function initViewer() {
  const d = dialog();
  d.querySelector("#viewer-close").addEventListener("click", () => d.close());
  d.querySelector("#mode-output").addEventListener("click", () => { release(); controller = new AbortController(); setMode("output"); });
  d.querySelector("#mode-compare").addEventListener("click", () => { release(); controller = new AbortController(); setMode("compare"); });
  d.querySelector("#compare-range").addEventListener("input", applySplit);
  d.addEventListener("close", () => {
    release();
    d.querySelector("#viewer-body").replaceChildren();
    current = null;
  });
  // A click on the backdrop (outside the dialog's box) closes it.
  d.addEventListener("click", (e) => { if (e.target === d) d.close(); });
}
