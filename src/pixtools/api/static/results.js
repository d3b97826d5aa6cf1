// Analysis results drawn, not dumped: face and text boxes over the image, text to copy,
// moderation scores as meters.

import { el, svg, copyText, announce } from "./dom.js";

/** An image with boxes over it; coordinates are in source pixels (what the ML ops return). */
export function boxedImage(url, width, height, boxes, label) {
  const overlay = svg("svg", {
    class: "boxes", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true",
  }, boxes.map((b) => svg("rect", {
    x: b.box[0], y: b.box[1], width: Math.max(1, b.box[2] - b.box[0]), height: Math.max(1, b.box[3] - b.box[1]),
    class: b.kind, "vector-effect": "non-scaling-stroke",
  }, svg("title", {}, b.title))));
  return el("figure", { class: "boxed", "data-boxes": String(boxes.length) },
    el("img", { src: url, alt: label }), overlay);
}

export function resultBoxes(result) {
  if (!result) return [];
  const faces = (result.faces || []).map((f, i) => ({ box: f.box, kind: "face", title: `face ${i + 1}: score ${f.score}` }));
  const lines = (result.lines || []).map((l) => ({ box: l.box, kind: "text", title: l.text }));
  return [...faces, ...lines];
}

function percent(v) {
  return `${(v * 100).toFixed(1)} %`;
}

/** The parts of a result that read as text or numbers (next to the tile). */
export function resultDetails(result, name) {
  if (!result) return null;
  const parts = [];
  if (Array.isArray(result.faces)) parts.push(el("p", { class: "result-line" }, `${result.faces.length} face${result.faces.length === 1 ? "" : "s"} found`));
  if (result.faces_blurred != null) parts.push(el("p", { class: "result-line" }, `${result.faces_blurred} face${result.faces_blurred === 1 ? "" : "s"} blurred`));
  if (typeof result.text === "string") {
    const id = `ocr-${name}-${Math.random().toString(36).slice(2, 8)}`;
    parts.push(el("div", { class: "ocr" },
      el("label", { for: id }, "Recognised text"),
      el("textarea", { id, readonly: true, rows: "4", class: "ocr-text" }, result.text || ""),
      el("button", {
        type: "button", class: "secondary",
        onclick: async () => announce((await copyText(result.text)) ? "Text copied" : "Select the text to copy it"),
      }, "Copy text")));
  }
  if (typeof result.nsfw === "number") {
    for (const [label, value] of [["Safe", result.sfw], ["Not safe", result.nsfw]]) {
      const id = `m-${label}-${Math.random().toString(36).slice(2, 8)}`;
      parts.push(el("div", { class: "score" },
        el("label", { for: id }, label),
        el("meter", { id, min: "0", max: "1", low: "0.3", high: "0.7", optimum: label === "Safe" ? "1" : "0", value: String(value) }, percent(value)),
        el("span", {}, percent(value))));
    }
  }
  const known = new Set(["faces", "faces_blurred", "text", "lines", "nsfw", "sfw"]);
  const rest = Object.fromEntries(Object.entries(result).filter(([k]) => !known.has(k)));
  if (Object.keys(rest).length) {
    parts.push(el("details", {}, el("summary", {}, "Other results"), el("pre", {}, JSON.stringify(rest, null, 1))));
  }
  return el("div", { class: "result" }, parts);
}
