// Documents: upload several files (picker or drag-and-drop) with a progress bar each, then
// their live status (queued → processing → indexed, or failed with its message); list,
// filter, delete; a password for an encrypted PDF.
import { all, api, upload } from "./api.js";
import { t } from "./i18n.js";
import { can, describe, el, formatBytes, state, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const BUSY = new Set(["queued", "processing", "deleting"]);
const PARALLEL = 2;          // transfers at once
const POLL_MS = 1000;
const docs = new Map();      // id → the document as the API last described it
const files = new Map();     // id → the File it came from (a retry with a password resends it)
let bound = false;
let timer = null;

export function init() {
  if (!bound) bind();
  bound = true;
  docs.clear();
  $("documents").replaceChildren();
  $("uploads").replaceChildren();
  fillCollections();
  load();
}

export function enter() { load(); }

function bind() {
  $("upload").addEventListener("change", (e) => { send([...e.target.files]); e.target.value = ""; });
  const zone = $("view-documents");
  zone.addEventListener("dragover", (e) => {
    if (!can("editor") || !e.dataTransfer.types.includes("Files")) return;
    e.preventDefault();
    $("dropzone").classList.add("over");
  });
  zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) $("dropzone").classList.remove("over"); });
  zone.addEventListener("drop", (e) => {
    $("dropzone").classList.remove("over");
    if (!can("editor") || !e.dataTransfer.files.length) return;
    e.preventDefault();
    send([...e.dataTransfer.files]);
  });
  $("doc-filter").addEventListener("input", render);
  $("doc-status").addEventListener("change", render);
  $("doc-collection").addEventListener("change", () => { docs.clear(); $("documents").replaceChildren(); load(); });
  $("documents").addEventListener("click", rowAction);
  document.addEventListener("grounded:collections", fillCollections);
}

function fillCollections() {
  const names = state.collections.filter((c) => c.status !== "deleting").map((c) => c.name);
  const target = $("upload-collection").value || "default";
  const shown = $("doc-collection").value;
  $("upload-collection").replaceChildren(...names.map((n) => el("option", { value: n, selected: n === target }, n)));
  $("doc-collection").replaceChildren(el("option", { value: "" }, t("docs.all")),
    ...names.map((n) => el("option", { value: n, selected: n === shown }, n)));
}

async function load() {
  const coll = $("doc-collection").value;
  try {
    const items = await all(`/v1/documents${coll ? `?collection=${encodeURIComponent(coll)}` : ""}`);
    const seen = new Set(items.map((d) => d.id));
    for (const id of docs.keys()) if (!seen.has(id)) docs.delete(id);
    for (const d of items) docs.set(d.id, d);
    render();
  } catch (err) {
    toast(describe(err), true);
  }
}

async function send(list) {
  const queue = list.map((file) => ({ file, item: uploadItem(file) }));
  const password = $("upload-password").value;
  const collection = $("upload-collection").value;
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await transfer(next.file, next.item, { collection, password });
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  $("upload-password").value = "";
}

function uploadItem(file) {
  const bar = el("progress", { max: 1, value: 0, "aria-label": t("docs.transfer", { name: file.name }) });
  const item = el("li", { "data-testid": "upload-item" }, el("span", { class: "name", text: file.name }),
    bar, el("span", { class: "state hint", text: t("docs.waiting") }));
  $("uploads").prepend(item);
  return item;
}

async function transfer(file, item, fields) {
  const bar = item.querySelector("progress");
  const said = item.querySelector(".state");
  said.textContent = t("docs.sending");
  try {
    const { status, body } = await upload(file, fields, (f) => { bar.value = f; });
    bar.value = 1;
    files.set(body.id, file);
    docs.set(body.id, body);
    item.dataset.doc = body.id;
    said.textContent = status === 200 ? t("docs.already") : t(`status.${body.status}`);
    render();
  } catch (err) {
    item.classList.add("bad");
    said.textContent = describe(err);
    if (err.status === 409 && err.code === "conflict") {
      item.append(el("button", { type: "button", class: "link", onclick: () => {
        item.remove();
        transfer(file, uploadItem(file), { ...fields, replace: "true" });
      } }, t("docs.replace")));
    }
  }
}

function render() {
  const text = $("doc-filter").value.trim().toLowerCase();
  const status = $("doc-status").value;
  const body = $("documents");
  const rows = new Map([...body.children].map((r) => [Number(r.dataset.id), r]));
  const shown = [...docs.values()]
    .filter((d) => (!text || d.filename.toLowerCase().includes(text)) && (!status || d.status === status))
    .sort((a, b) => b.id - a.id);
  const wanted = shown.map((d) => {
    const old = rows.get(d.id);
    // Keep a row that did not change: a password being typed in it keeps its focus.
    return old && old.dataset.stamp === stamp(d) ? old : row(d);
  });
  body.replaceChildren(...wanted);
  $("docs-empty").hidden = wanted.length > 0;
  for (const item of $("uploads").querySelectorAll("[data-doc]")) {
    const d = docs.get(Number(item.dataset.doc));
    if (d) item.querySelector(".state").textContent = statusText(d);
  }
  poll();
}

const stamp = (d) => `${d.status}|${d.updated_at}|${d.pages}|${d.chunk_count}`;

function statusText(d) {
  if (d.status === "processing" && (d.pages || d.chunk_count)) {
    return t("docs.progress", { pages: d.pages ?? "–", chunks: d.chunk_count });
  }
  if (d.status === "indexed") return t("docs.indexed", { chunks: d.chunk_count });
  return t(`status.${d.status}`);
}

function row(d) {
  const statusCell = el("td", { class: "status" }, el("span", { class: `badge ${d.status}`, text: statusText(d) }));
  if (d.status === "failed" && d.error) statusCell.append(el("p", { class: "error", text: d.error }));
  if (d.status === "failed" && d.error_code === "encrypted" && can("editor")) {
    const id = `pw-${d.id}`;
    statusCell.append(el("div", { class: "retry" },
      el("label", { for: id, text: t("docs.password") }),
      el("input", { id, type: "password", autocomplete: "off", "data-testid": "document-password" }),
      el("button", { type: "button", dataset: { act: "retry" } }, t("docs.retry"))));
  }
  const actions = el("td", { class: "actions" });
  if (can("editor") && d.status !== "deleting") {
    actions.append(d.source_id
      ? el("span", { class: "hint", text: t("docs.fromfolder") })
      : el("button", { type: "button", class: "danger", dataset: { act: "delete" },
        "aria-label": t("docs.deletename", { name: d.filename }) }, t("common.delete")));
  }
  return el("tr", { "data-testid": "document", "data-status": d.status, dataset: { id: d.id, stamp: stamp(d) } },
    el("td", { class: "name" }, el("span", { text: d.filename })),
    el("td", { text: d.collection }), statusCell,
    el("td", { class: "num", text: formatBytes(d.size) }), actions);
}

async function rowAction(event) {
  const button = event.target.closest("button[data-act]");
  if (!button) return;
  const tr = button.closest("tr");
  const d = docs.get(Number(tr.dataset.id));
  if (button.dataset.act === "delete") {
    if (!window.confirm(t("docs.confirmdelete", { name: d.filename }))) return;
    try {
      docs.set(d.id, await api(`/v1/documents/${d.id}`, { method: "DELETE" }));
      render();
    } catch (err) { toast(describe(err), true); }
  } else if (button.dataset.act === "retry") {
    const password = tr.querySelector("input[type=password]").value;
    if (!password) { tr.querySelector("input[type=password]").focus(); return; }
    const resend = (file) => transfer(file, uploadItem(file), { collection: d.collection, password });
    if (files.has(d.id)) resend(files.get(d.id));
    else {
      // The file is not in this tab's memory any more: the user picks it again.
      const pick = el("input", { type: "file", accept: ".pdf,application/pdf", class: "sr-only" });
      pick.addEventListener("change", () => { if (pick.files[0]) resend(pick.files[0]); pick.remove(); });
      document.body.append(pick);
      pick.click();
    }
  }
}

function poll() {
  clearTimeout(timer);
  const busy = [...docs.values()].filter((d) => BUSY.has(d.status));
  if (!busy.length || !state.me) return;
  timer = setTimeout(async () => {
    if (!state.me) return;
    if (busy.length > 20 || busy.some((d) => d.status === "deleting")) { await load(); return; }
    await Promise.all(busy.map(async (d) => {
      try { docs.set(d.id, await api(`/v1/documents/${d.id}`)); } catch (err) {
        if (err.status === 404) docs.delete(d.id);
      }
    }));
    render();
  }, POLL_MS);
}
