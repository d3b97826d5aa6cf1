// The jobs column: history from the server (filters, paging), live progress by long
// polling, results and actions. Each job card owns its object URLs and releases them.

import { el, announce } from "./dom.js";
import { api, apiWithState, fetchBlob, proxied, saveBlob, serverNow, ApiError } from "./api.js";
import { formatBytes } from "./inspect.js";
import { boxedImage, resultBoxes, resultDetails } from "./results.js";
import { openViewer } from "./viewer.js";

const TERMINAL = new Set(["succeeded", "partial", "failed", "canceled"]);
// Progress is pushed by long polling: GET /api/v1/jobs/{id}?wait=N&since=STATE answers as
// soon as an output starts, ends or is taken over (or the job ends), else after N seconds.
const MAX_WAIT_SECONDS = 25;
const SHARED_WAIT_SECONDS = 3; // more jobs running than slots: take turns this often
const MAX_POLLS = 4; // under the browser's six connections per host
const PAGE = 10;
const LOCAL_SOURCES_KEPT = 20;

function elapsed(fromIso, toIso) {
  if (!fromIso) return "";
  const ms = (toIso ? Date.parse(toIso) : serverNow()) - Date.parse(fromIso);
  const s = Math.max(0, ms / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function pill(status) {
  return el("span", { class: `pill ${status}` }, status);
}

class Slots {
  constructor(n) { this.free = n; this.queue = []; }
  async acquire() {
    if (this.free > 0) { this.free--; return; }
    await new Promise((resolve) => this.queue.push(resolve));
  }
  release() {
    const next = this.queue.shift();
    if (next) next(); else this.free++;
  }
}

class JobView {
  constructor(list, job) {
    this.list = list;
    this.job = job;
    this.urls = new Map(); // output name -> { key, url }
    this.sourceThumb = null;
    this.controller = new AbortController();
    this.node = el("article", { class: "job", id: `job-${job.id}`, "aria-labelledby": `job-${job.id}-title` });
    this.update(job);
  }

  get localSource() {
    return this.list.localSources.get(this.job.id) || null;
  }

  destroy() {
    this.controller.abort();
    for (const { url } of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
    if (this.sourceThumb) URL.revokeObjectURL(this.sourceThumb);
    this.sourceThumb = null;
    this.node.remove();
  }

  /** An object URL for a small image, fetched once per (name, version) and kept. */
  async preview(name, key, path) {
    const have = this.urls.get(name);
    if (have && have.key === key) return have.url;
    const blob = await fetchBlob(path, this.controller.signal);
    // The card may have gone while the bytes arrived: then no URL is made to leak.
    if (this.controller.signal.aborted) throw new DOMException("card removed", "AbortError");
    const url = URL.createObjectURL(blob);
    const old = this.urls.get(name);
    if (old) URL.revokeObjectURL(old.url);
    this.urls.set(name, { key, url });
    return url;
  }

  async sourceUrl() {
    if (this.localSource) return this.localSource;
    if (!this.sourceThumb) {
      try {
        const blob = await fetchBlob(`/api/v1/jobs/${this.job.id}/source/preview`, this.controller.signal);
        if (this.controller.signal.aborted) return null;
        if (!this.sourceThumb) this.sourceThumb = URL.createObjectURL(blob); // one of two racing calls
      } catch {
        return null; // made by a worker with the first output: not there yet
      }
    }
    return this.sourceThumb;
  }

  update(job) {
    const snapshot = JSON.stringify(job);
    if (snapshot === this.snapshot) return; // nothing new: keep the DOM (and the focus)
    this.snapshot = snapshot;
    const before = this.job.status;
    const focused = this.node.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    this.job = job;
    const src = job.source;
    const title = el("h3", { id: `job-${job.id}-title` }, src.filename);
    const thumb = el("div", { class: "source-thumb" });
    this.fillSourceThumb(thumb);
    const meta = el("p", { class: "meta" },
      `${src.width}×${src.height} ${src.format.toUpperCase()} · ${formatBytes(src.bytes)} · `,
      el("time", { datetime: job.created_at }, new Date(job.created_at).toLocaleString()),
      " · ", el("span", { class: "elapsed", "data-from": job.created_at, "data-to": job.finished_at || "" }, elapsed(job.created_at, job.finished_at)));
    const outs = el("ul", { class: "outputs", "aria-label": `Outputs of ${src.filename}` }, job.outputs.map((o) => this.outputTile(o)));
    const children = [
      el("header", { class: "job-head" }, thumb, el("div", {}, el("div", { class: "title-row" }, title, pill(job.status)), meta)),
      job.error ? el("p", { class: "error" }, job.error) : null,
      outs,
      this.actions(),
    ];
    if (job.metadata) children.push(el("details", {}, el("summary", {}, "Metadata"), el("pre", {}, JSON.stringify(job.metadata, null, 1))));
    this.node.className = `job ${job.status}`;
    this.node.replaceChildren(...children.filter(Boolean));
    if (focused) this.node.querySelector(`[data-key="${focused}"]`)?.focus();
    this.tick();
    if (before !== job.status && TERMINAL.has(job.status)) announce(`${src.filename}: ${job.status}`);
  }

  async fillSourceThumb(box) {
    const url = await this.sourceUrl();
    if (url) box.replaceChildren(el("img", { src: url, alt: "", class: "thumb-img" }));
  }

  outputTile(o) {
    const job = this.job;
    const tile = el("li", { class: `output ${o.status}`, "data-name": o.name });
    const head = el("div", { class: "out-head" }, el("strong", {}, o.name), " ", pill(o.status));
    const facts = [];
    if (o.attempts > 1) facts.push(`attempt ${o.attempts}`);
    if (o.started_at) facts.push(el("span", { class: "out-elapsed", "data-from": o.started_at, "data-to": o.finished_at || "" }, elapsed(o.started_at, o.finished_at)));
    const media = el("button", { type: "button", class: "thumb", "data-key": `open-${o.name}`, "aria-label": `Open ${o.name}`, disabled: o.status !== "succeeded", onclick: () => openViewer(job, o, this.localSource) });
    if (o.status === "succeeded" && o.preview_url) {
      this.preview(o.name, `${o.attempts}:${o.bytes}`, o.preview_url)
        .then((url) => media.replaceChildren(el("img", { src: url, alt: `${o.name} preview`, loading: "lazy" })))
        .catch(() => media.replaceChildren(el("span", { class: "hint" }, "no preview")));
    } else if (o.status === "succeeded" && o.result && resultBoxes(o.result).length) {
      this.sourceUrl().then((url) => url && media.replaceChildren(boxedImage(url, job.source.width, job.source.height, resultBoxes(o.result), `${o.name} boxes`)));
    } else {
      media.append(el("span", { class: "placeholder" }, o.status === "succeeded" ? "analysis" : o.status === "running" ? "working…" : o.status));
    }
    tile.append(media, head, el("p", { class: "out-facts" }, facts.flatMap((f, i) => (i ? [" · ", f] : [f]))));
    tile.append(el("p", { class: "stale", role: "alert", hidden: true }));
    if (o.error) tile.append(el("p", { class: "error" }, o.error));
    if (o.status === "succeeded" && o.bytes != null) {
      const saved = 1 - o.bytes / job.source.bytes;
      tile.append(el("p", { class: "size" }, `${o.width}×${o.height} ${String(o.format).toUpperCase()} · ${formatBytes(o.bytes)} `,
        el("span", { class: saved >= 0 ? "saved" : "grew" }, saved >= 0 ? `(−${(saved * 100).toFixed(0)} %)` : `(+${(-saved * 100).toFixed(0)} %)`)));
    }
    tile.append(resultDetails(o.result, o.name) || "");
    if (o.url) {
      tile.append(el("button", { type: "button", class: "secondary", "data-key": `dl-${o.name}`, onclick: () => this.download(proxied(o.url), `${o.name}.${o.format === "jpeg" ? "jpg" : o.format}`) }, `Download ${o.name}`));
    }
    return tile;
  }

  actions() {
    const job = this.job;
    const bar = el("div", { class: "actions" });
    const running = !TERMINAL.has(job.status);
    if (running) bar.append(el("button", { type: "button", class: "secondary", "data-key": "cancel", onclick: () => this.act("cancel") }, "Cancel"));
    if (!running && job.status !== "canceled" && job.outputs.some((o) => o.status === "failed")) {
      bar.append(el("button", { type: "button", class: "secondary", "data-key": "retry", onclick: () => this.act("retry") }, "Retry failed"));
    }
    if (job.archive && job.archive.url) {
      bar.append(el("button", { type: "button", class: "secondary", "data-key": "zip", onclick: () => this.download(proxied(job.archive.url), `${job.id}.zip`) }, "Download ZIP"));
    }
    bar.append(el("button", {
      type: "button", class: "danger", disabled: running, "data-key": "delete",
      title: running ? "Cancel the job first" : "Delete the job and its files",
      onclick: () => this.remove(),
    }, "Delete"));
    return bar;
  }

  async download(path, filename) {
    try {
      saveBlob(await fetchBlob(path, this.controller.signal), filename);
      announce(`Downloading ${filename}`);
    } catch (err) {
      this.list.error(err);
    }
  }

  async act(what) {
    try {
      const job = await api(`/api/v1/jobs/${this.job.id}/${what}`, { method: "POST" });
      this.update(job);
      announce(`${this.job.source.filename}: ${what === "cancel" ? "canceled" : "retrying"}`);
      this.list.track(this);
    } catch (err) {
      this.list.error(err);
    }
  }

  async remove() {
    if (!window.confirm(`Delete ${this.job.source.filename} and all its outputs?`)) return;
    try {
      await api(`/api/v1/jobs/${this.job.id}`, { method: "DELETE" });
      announce(`${this.job.source.filename} deleted`);
      this.list.forget(this.job.id);
    } catch (err) {
      this.list.error(err);
    }
  }

  /** Once a second while unfinished: elapsed times and stale warnings, no request. */
  tick() {
    for (const node of this.node.querySelectorAll("[data-from]")) {
      node.textContent = elapsed(node.dataset.from, node.dataset.to || null);
    }
    const staleMs = this.list.config.stale_after_seconds * 1000;
    for (const o of this.job.outputs) {
      const warn = this.node.querySelector(`li.output[data-name="${o.name}"] .stale`);
      if (!warn) continue;
      const beat = o.heartbeat_at || o.started_at;
      const quiet = o.status === "running" && beat ? serverNow() - Date.parse(beat) : 0;
      const stale = quiet > staleMs;
      if (stale && warn.hidden) {
        warn.textContent = `No progress for ${Math.round(quiet / 1000)} s (stale after ${this.list.config.stale_after_seconds} s): its worker may have stopped; it will be retried.`;
      }
      warn.hidden = !stale;
    }
  }
}

export class JobList {
  constructor({ container, moreButton, errorEl, config }) {
    this.container = container;
    this.moreButton = moreButton;
    this.errorEl = errorEl;
    this.config = config;
    this.views = new Map();
    this.localSources = new Map(); // job id -> object URL of the file this tab uploaded
    this.polling = new Set(); // the job views being long-polled
    this.slots = new Slots(MAX_POLLS);
    this.filters = { status: "", q: "" };
    this.cursor = null;
    this.generation = 0;
    moreButton.addEventListener("click", () => this.load(false));
    setInterval(() => {
      for (const v of this.views.values()) if (!TERMINAL.has(v.job.status)) v.tick();
    }, 1000);
  }

  error(err) {
    const text = err instanceof ApiError ? err.message : String(err);
    // A missing or wrong key is the usual reason a list is refused: say where to put it.
    this.errorEl.textContent = err instanceof ApiError && err.status === 401 ? `${text} — enter your API key at the top.` : text;
  }

  setFilters(filters) {
    this.filters = filters;
    this.load(true);
  }

  /** Load a page of history; `reset` starts again from the newest job. */
  async load(reset = true) {
    const generation = reset ? ++this.generation : this.generation;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.filters.status) params.set("status", this.filters.status);
    if (this.filters.q) params.set("q", this.filters.q);
    if (!reset && this.cursor) params.set("cursor", this.cursor);
    this.errorEl.textContent = "";
    let page;
    try {
      page = await api(`/api/v1/jobs?${params}`);
    } catch (err) {
      if (reset) this.clear();
      this.error(err);
      return;
    }
    if (generation !== this.generation) return; // a newer load started meanwhile
    if (reset) this.clear();
    for (const job of page.items) this.add(job, false);
    this.cursor = page.next_cursor;
    this.moreButton.hidden = !page.next_cursor;
    if (reset && !page.items.length) this.container.replaceChildren(el("p", { class: "hint empty" }, "No jobs yet."));
  }

  clear() {
    for (const v of this.views.values()) v.destroy();
    this.views.clear();
    this.container.replaceChildren();
  }

  /** Show a job (newest on top when `prepend`), and follow it while it runs. */
  add(job, prepend = true, localSource = null) {
    if (localSource) this.keepLocal(job.id, localSource);
    let view = this.views.get(job.id);
    if (view) view.update(job);
    else {
      view = new JobView(this, job);
      this.views.set(job.id, view);
      this.container.querySelector(".empty")?.remove();
      if (prepend) this.container.prepend(view.node);
      else this.container.append(view.node);
    }
    if (!TERMINAL.has(job.status)) this.track(view);
    return view;
  }

  keepLocal(id, url) {
    this.localSources.set(id, url);
    while (this.localSources.size > LOCAL_SOURCES_KEPT) {
      const [oldest, old] = this.localSources.entries().next().value;
      URL.revokeObjectURL(old);
      this.localSources.delete(oldest);
    }
  }

  forget(id) {
    const view = this.views.get(id);
    if (view) view.destroy();
    this.views.delete(id);
    const local = this.localSources.get(id);
    if (local) URL.revokeObjectURL(local);
    this.localSources.delete(id);
  }

  /** How long a long poll may wait: short enough that the heartbeats it brings keep the stale
   * warning honest (a heartbeat is at most heartbeat_seconds old when read), and short when
   * other jobs wait for a connection. */
  waitSeconds() {
    if (this.slots.queue.length) return SHARED_WAIT_SECONDS;
    const { stale_after_seconds: stale, heartbeat_seconds: beat } = this.config;
    return Math.max(1, Math.min(MAX_WAIT_SECONDS, Math.floor(stale - beat - 1)));
  }

  /** Follow one job until it ends: each answer comes when it changes (at most MAX_POLLS
   * requests at once; a job waiting for a slot gets the next free one). */
  async track(view) {
    const id = view.job.id;
    if (this.polling.has(view)) return;
    this.polling.add(view);
    let state = null; // the first request reads the job now, and its state token
    try {
      while (this.views.get(id) === view && !TERMINAL.has(view.job.status)) {
        await this.slots.acquire();
        let answer;
        try {
          const query = state ? `wait=${this.waitSeconds()}&since=${encodeURIComponent(state)}` : "wait=0";
          answer = await apiWithState(`/api/v1/jobs/${id}?${query}`, { signal: view.controller.signal });
        } finally {
          this.slots.release();
        }
        if (this.views.get(id) !== view) break;
        state = answer.state;
        view.update(answer.body);
      }
    } catch (err) {
      if (err.name !== "AbortError") {
        this.error(err);
        // A dropped connection: try again shortly rather than give up on the job.
        setTimeout(() => { if (this.views.get(id) === view) this.track(view); }, 3000);
      }
    } finally {
      this.polling.delete(view);
    }
  }
}
