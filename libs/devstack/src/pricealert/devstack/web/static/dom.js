// DOM helpers: every string goes in as text (createElement / textContent), never as markup.

/** An element: h("p", {class: "x", onclick: fn}, "text", child, …); null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (strings become text nodes). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** The page's main region, emptied and filled with `children`; focus moves to its heading. */
export function show(title, ...children) {
  const main = document.getElementById("main");
  const heading = h("h1", { tabindex: "-1" }, title);
  replace(main, heading, ...children);
  document.title = `${title} · pricealert`;
  heading.focus();
  return main;
}

/** A short, readable date-time in the reader's time zone (an empty string for null). */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** A toast in #toasts (role=status, aria-live): gone after `ms`. */
export function toast(text, kind = "info", ms = 8000) {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), ms);
  return item;
}
