// What every part of the page shares: who is signed in, the collections, small helpers.
import { t } from "./i18n.js";

export const state = {
  me: null,            // GET /v1/me: {name, role, collections}
  collections: [],     // the collections this key may read
};

const ORDER = ["reader", "editor", "admin"];

/** Whether the signed-in key's role includes `role`. */
export function can(role) {
  if (!state.me) return false;
  if (role === "admin-all") return state.me.role === "admin" && state.me.collections === null;
  return ORDER.indexOf(state.me.role) >= ORDER.indexOf(role);
}

/** Create an element: el("li", {class: "x", dataset: {id: 1}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    else if (k === "style") Object.assign(node.style, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** A clone of a <template>'s content, translated. */
export function fromTemplate(id, translate) {
  const frag = document.getElementById(id).content.cloneNode(true);
  translate(frag);
  return frag.firstElementChild;
}

let toastTimer = null;
/** A short message at the bottom of the screen (errors stay longer). */
export function toast(message, isError = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.toggle("bad", isError);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 3000);
}

/** An error's message for a person: the server's message, else a generic line. */
export function describe(err) {
  if (err && err.status === 0) return t("error.network");
  if (err && err.status === 429) return t("error.busy");
  return (err && err.message) || t("error.generic");
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(document.documentElement.lang);
}

/** Show or hide everything marked data-role (reader, editor, admin, admin-all). */
export function applyRole(root = document) {
  for (const node of root.querySelectorAll("[data-role]")) node.hidden = !can(node.dataset.role);
  for (const node of root.querySelectorAll("[data-feature]")) {
    if (document.body.dataset[node.dataset.feature] !== "on") node.hidden = true;
  }
}
