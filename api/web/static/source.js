// The source panel: a citation's quote, where it is, and the original at that place:
// for a PDF the rendered page(s) with the quoted span's boxes overlaid, otherwise the
// extracted text around it with the span highlighted; and the original for download.
import { api, blob } from "./api.js";
import { t } from "./i18n.js";
import { describe, el, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
let current = null;       // the citation shown
let trigger = null;       // what opened the panel (focus returns there)
let loading = null;       // AbortController of the panel's fetches
let urls = [];            // object URLs to revoke when the panel changes

export function init() {
  $("source-close").addEventListener("click", close);
  $("source-download").addEventListener("click", download);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("source-panel").hidden) close();
  });
}

function reset() {
  loading?.abort();
  loading = null;
  for (const url of urls) URL.revokeObjectURL(url);
  urls = [];
  $("source-pages").replaceChildren();
  $("source-text").replaceChildren();
  $("source-text").hidden = true;
  $("source-status").textContent = "";
}

export function close() {
  if ($("source-panel").hidden) return;
  reset();
  $("source-panel").hidden = true;
  document.body.classList.remove("panel-open");
  current = null;
  if (trigger && document.contains(trigger)) trigger.focus();
}

export async function open(cite, from) {
  reset();
  current = cite;
  trigger = from;
  const panel = $("source-panel");
  panel.hidden = false;
  document.body.classList.add("panel-open");
  $("source-title").textContent = cite.filename;
  $("source-meta").textContent = meta(cite);
  $("source-quote").textContent = cite.quote;
  $("source-download").hidden = !cite.document_id;
  $("source-title").focus();
  if (!cite.document_id) { $("source-status").textContent = t("source.gone"); return; }
  if (document.body.dataset.passage !== "on" || cite.doc_start == null) return;
  loading = new AbortController();
  const signal = loading.signal;
  $("source-status").textContent = t("source.loading");
  try {
    const passage = await api(
      `/v1/documents/${cite.document_id}/passage?start=${cite.doc_start}&end=${cite.doc_end}`, { signal });
    if (signal.aborted) return;
    $("source-meta").textContent = meta({ ...cite, ...passage });
    if (passage.renderable && passage.pages.length) await showPages(passage, signal);
    else showText(passage);
    if (!signal.aborted) $("source-status").textContent = "";
  } catch (err) {
    if (err.name !== "AbortError") $("source-status").textContent = describe(err);
  }
}

function meta(c) {
  const parts = [];
  const start = c.page_start;
  const end = c.page_end;
  if (start) parts.push(t("source.page", { page: end && end !== start ? `${start}–${end}` : start }));
  if (c.heading) parts.push(c.heading);
  return parts.join(" · ");
}

const pct = (f) => `${(f * 100).toFixed(3)}%`;

function imageWidth(box) {
  // Rounded to 100 px so that the browser's cache serves the same page at any nearby size.
  const px = Math.round((box.clientWidth || 600) * (window.devicePixelRatio || 1) / 100) * 100;
  return Math.min(2000, Math.max(200, px));
}

async function showPages(passage, signal) {
  const container = $("source-pages");
  const figures = passage.pages.map((p) => {
    const img = el("img", { "data-testid": "source-page", dataset: { page: p.page },
      alt: t("source.pageimage", { page: p.page, file: passage.filename }) });
    const frame = el("div", { class: "page-frame", style: { aspectRatio: `${p.width} / ${p.height}` } }, img,
      ...p.boxes.map(([x0, y0, x1, y1]) => el("div", { class: "box", "data-testid": "source-highlight",
        style: { left: pct(x0), top: pct(y0), width: pct(x1 - x0), height: pct(y1 - y0) } })));
    container.append(el("figure", {}, frame, el("figcaption", { text: t("source.page", { page: p.page }) })));
    return { img, frame, page: p.page };
  });
  await Promise.all(figures.map(async ({ img, frame, page }) => {
    const width = imageWidth(frame);
    const data = await blob(`/v1/documents/${passage.document_id}/pages/${page}/image?width=${width}`, signal);
    if (signal.aborted) return;
    const url = URL.createObjectURL(data);
    urls.push(url);
    img.src = url;
    await img.decode().catch(() => {});
  }));
  container.querySelector(".box")?.scrollIntoView({ block: "center" });
}

function showText(passage) {
  const box = $("source-text");
  const before = passage.before || "";
  const after = passage.after || "";
  box.replaceChildren(
    el("p", {}, before ? "…" + before : "",
      el("mark", { "data-testid": "source-highlight", text: passage.text }), after ? after + "…" : ""));
  box.hidden = false;
  box.querySelector("mark").scrollIntoView({ block: "center" });
}

async function download() {
  if (!current?.document_id) return;
  try {
    const data = await blob(`/v1/documents/${current.document_id}/file`);
    const url = URL.createObjectURL(data);
    const a = el("a", { href: url, download: current.filename.split("/").pop() });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    toast(describe(err), true);
  }
}
