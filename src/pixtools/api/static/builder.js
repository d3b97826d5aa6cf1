// The visual job builder: outputs and their steps, generated from GET /api/v1/operations.
// The spec object is the single source of truth; the JSON view and the requests read it.

import { el, move, announce } from "./dom.js";
import { STARTERS } from "./presets.js";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function rangeText(p) {
  const c = p.constraints || {};
  const lo = c.ge ?? c.gt;
  const hi = c.le ?? c.lt;
  if (lo != null && hi != null) return `${lo}–${hi}`;
  if (c.max_length) return `up to ${c.max_length} characters`;
  return "";
}

export class Builder {
  constructor({ ops, listEl, onChange }) {
    this.ops = new Map(ops.map((o) => [o.op, o]));
    this.opList = ops;
    this.listEl = listEl;
    this.onChange = onChange;
    this.spec = { outputs: [] };
    this.dragged = null;
  }

  /** Replace the whole spec (a preset or the JSON view) and redraw. */
  setSpec(spec, { notify = true } = {}) {
    this.spec = spec;
    if (!Array.isArray(this.spec.outputs)) this.spec.outputs = [];
    this.render();
    if (notify) this.onChange(this.spec);
  }

  changed(focusKey) {
    this.render(focusKey);
    this.onChange(this.spec);
  }

  addOutput() {
    const used = new Set(this.spec.outputs.map((o) => o.name));
    let n = this.spec.outputs.length + 1;
    while (used.has(`output-${n}`)) n++;
    this.spec.outputs.push({ name: `output-${n}`, steps: [{ op: "resize", ...STARTERS.resize }] });
    this.changed(`o${this.spec.outputs.length - 1}-name`);
    announce(`Output output-${n} added`);
  }

  newStep(op) {
    return { op, ...(STARTERS[op] || {}) };
  }

  render(focusKey) {
    const items = this.spec.outputs.map((out, i) => this.renderOutput(out, i));
    this.listEl.replaceChildren(...items);
    if (focusKey) {
      const target = this.listEl.querySelector(`[data-focus="${focusKey}"]`);
      if (target) target.focus();
    }
  }

  moveButtons(label, list, index, key, what) {
    const up = el("button", {
      type: "button", class: "icon", "data-focus": `${key}-up`, "aria-label": `Move ${label} up`,
      disabled: index === 0,
      onclick: () => { move(list, index, index - 1); this.changed(index - 1 === 0 ? `${this.keyAt(key, index - 1)}-down` : `${this.keyAt(key, index - 1)}-up`); announce(`${label} moved up`); },
    }, "↑");
    const down = el("button", {
      type: "button", class: "icon", "data-focus": `${key}-down`, "aria-label": `Move ${label} down`,
      disabled: index === list.length - 1,
      onclick: () => { move(list, index, index + 1); this.changed(index + 1 === list.length - 1 ? `${this.keyAt(key, index + 1)}-up` : `${this.keyAt(key, index + 1)}-down`); announce(`${label} moved down`); },
    }, "↓");
    const remove = el("button", {
      type: "button", class: "icon danger", "aria-label": `Remove ${label}`,
      onclick: () => { list.splice(index, 1); this.changed(); announce(`${what} ${label} removed`); },
    }, "✕");
    return el("span", { class: "move" }, up, down, remove);
  }

  keyAt(key, index) {
    // "o2" -> "o{index}", "o2-s1" -> "o2-s{index}"
    return key.replace(/(\d+)$/, String(index));
  }

  /** The grip starts a drag (so text in the fields stays selectable); the item is a target. */
  grip(kind, index, owner) {
    return el("span", {
      class: "grip", "aria-hidden": "true", title: "Drag to reorder", draggable: "true",
      ondragstart: (e) => {
        e.stopPropagation();
        this.dragged = { kind, index, owner };
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", `${kind}:${index}`);
        const item = e.target.closest("li");
        if (item) e.dataTransfer.setDragImage(item, 10, 10);
      },
      ondragend: () => (this.dragged = null),
    }, "⠿");
  }

  dropTarget(kind, list, index, owner) {
    return {
      ondragover: (e) => {
        const d = this.dragged;
        if (d && d.kind === kind && d.owner === owner) {
          e.preventDefault();
          e.stopPropagation();
        }
      },
      ondrop: (e) => {
        const d = this.dragged;
        if (!d || d.kind !== kind || d.owner !== owner) return;
        e.preventDefault();
        e.stopPropagation();
        this.dragged = null;
        move(list, d.index, index);
        this.changed();
        announce(`${kind.replace(/-\d+$/, "")} moved to position ${index + 1}`);
      },
    };
  }

  renderOutput(out, i) {
    const key = `o${i}`;
    const nameId = `${key}-name`;
    const nameInput = el("input", {
      id: nameId, "data-focus": nameId, value: out.name, required: true, pattern: NAME_PATTERN.source,
      "aria-describedby": `${nameId}-hint`, autocomplete: "off", spellcheck: "false",
      oninput: (e) => {
        out.name = e.target.value;
        e.target.setAttribute("aria-invalid", String(!NAME_PATTERN.test(out.name)));
        this.onChange(this.spec);
      },
    });
    const steps = el("ol", { class: "steps", "aria-label": `Steps of ${out.name}` },
      out.steps.map((step, j) => this.renderStep(out, step, j, i)));
    const opSelect = el("select", { id: `${key}-add-op`, "aria-label": `Operation to add to ${out.name}` },
      ...groupOps(this.opList));
    const add = el("button", {
      type: "button", class: "secondary", "data-focus": `${key}-add`,
      onclick: () => {
        out.steps.push(this.newStep(opSelect.value));
        this.changed(`${key}-add`);
        announce(`Step ${opSelect.value} added to ${out.name}`);
      },
    }, "Add step");
    return el("li", { class: "output-card", ...this.dropTarget("output", this.spec.outputs, i, "spec") },
      el("div", { class: "output-head" },
        this.grip("output", i, "spec"),
        el("label", { for: nameId }, "Output name"),
        nameInput,
        this.moveButtons(`output ${out.name}`, this.spec.outputs, i, key, "Output")),
      el("p", { id: `${nameId}-hint`, class: "hint" }, "Lower-case letters, digits, - and _."),
      steps,
      el("div", { class: "add-step" }, opSelect, add));
  }

  renderStep(out, step, j, i) {
    const key = `o${i}-s${j}`;
    const def = this.ops.get(step.op);
    const body = def
      ? def.params.map((p) => this.renderParam(step, p, `${key}-${p.name}`))
      : [el("p", { class: "error" }, `unknown operation ${step.op}`)];
    return el("li", { class: "step", ...this.dropTarget(`step-${i}`, out.steps, j, out) },
      el("div", { class: "step-head" },
        this.grip(`step-${i}`, j, out),
        el("strong", {}, step.op),
        def ? el("span", { class: `queue ${def.queue}` }, def.queue === "ml" ? "ML" : def.kind) : null,
        this.moveButtons(`step ${j + 1} (${step.op}) of ${out.name}`, out.steps, j, key, "Step")),
      def && def.summary ? el("p", { class: "hint" }, def.summary.replace(/``/g, "")) : null,
      el("div", { class: "params" }, body));
  }

  renderParam(step, p, id) {
    const hintId = `${id}-hint`;
    const range = rangeText(p);
    // Descriptions often state the range already ("pixels, 1..16384"): say it once.
    const numbers = range.match(/[\d.]+/g) || [];
    const stated = p.description && numbers.every((n) => p.description.includes(n));
    const hint = [p.description, stated ? "" : range, p.required ? "required" : p.default != null ? `default ${p.default}` : "optional"]
      .filter(Boolean).join(" · ");
    const has = Object.prototype.hasOwnProperty.call(step, p.name);
    const set = (value) => {
      if (value === undefined || (!p.required && value === p.default)) delete step[p.name];
      else step[p.name] = value;
      this.onChange(this.spec);
    };
    let control;
    const c = p.constraints || {};
    if (p.type === "bool") {
      control = el("input", {
        id, type: "checkbox", checked: has ? Boolean(step[p.name]) : Boolean(p.default),
        "aria-describedby": hintId, onchange: (e) => set(e.target.checked),
      });
    } else if (p.type === "enum") {
      const options = [];
      if (!p.required && p.default == null) options.push(el("option", { value: "" }, "(none)"));
      for (const v of p.values) options.push(el("option", { value: v, selected: (has ? step[p.name] : p.default) === v }, String(v)));
      control = el("select", {
        id, "aria-describedby": hintId,
        onchange: (e) => set(e.target.value === "" ? undefined : e.target.value),
      }, options);
    } else if (p.type === "int" || p.type === "float") {
      control = el("input", {
        id, type: "number", inputmode: p.type === "int" ? "numeric" : "decimal",
        step: p.type === "int" ? "1" : "any", min: c.ge ?? c.gt, max: c.le ?? c.lt,
        value: has ? step[p.name] : "", placeholder: p.default != null ? String(p.default) : "",
        required: p.required, "aria-describedby": hintId,
        oninput: (e) => {
          const v = e.target.value;
          const invalid = v !== "" && !e.target.checkValidity();
          e.target.setAttribute("aria-invalid", String(invalid));
          set(v === "" ? undefined : Number(v));
        },
      });
    } else {
      control = el("input", {
        id, type: "text", value: has ? step[p.name] : "", maxlength: c.max_length,
        placeholder: p.default != null ? String(p.default) : "", required: p.required,
        "aria-describedby": hintId, oninput: (e) => set(e.target.value === "" ? undefined : e.target.value),
      });
    }
    return el("div", { class: `param ${p.type}` },
      el("label", { for: id }, p.name), control, el("span", { id: hintId, class: "hint" }, hint));
  }
}

function groupOps(ops) {
  const groups = new Map();
  for (const o of ops) {
    const label = o.queue === "ml" ? "ML (faces, text, moderation)" : o.kind === "encode" ? "Encode" : o.kind === "metadata" ? "Metadata" : "Image";
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(el("option", { value: o.op }, o.op));
  }
  return [...groups].map(([label, options]) => el("optgroup", { label }, options));
}
