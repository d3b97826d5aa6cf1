// A tiny element builder: no innerHTML anywhere, so nothing from a file or a server can
// become markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null && c !== false) node.append(c);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

const live = () => document.getElementById("status");

/** Announce a status change to screen readers (the page's aria-live region). */
export function announce(text) {
  const region = live();
  region.textContent = "";
  // A fresh text node after a tick is announced even when the text repeats.
  setTimeout(() => (region.textContent = text), 50);
}

/** Move the item at `from` to `to` in place. */
export function move(list, from, to) {
  if (to < 0 || to >= list.length || from === to) return;
  const [item] = list.splice(from, 1);
  list.splice(to, 0, item);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // no clipboard permission: the text is shown to copy by hand
  }
}
