// Knowledge bases: collections (admins create and delete them), each with its watched
// folders (path, schedule, globs, pause, sync now) and its jobs with their progress.
import { api } from "./api.js";
import { t, translate } from "./i18n.js";
import { applyRole, can, describe, el, formatTime, fromTemplate, state, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
let bound = false;
let timer = null;

export function enter() {
  if (!bound) {
    $("collection-form").addEventListener("submit", create);
    bound = true;
  }
  load();
}

export function leave() { clearTimeout(timer); }

async function load() {
  clearTimeout(timer);
  try {
    state.collections = (await api("/v1/collections?limit=500")).items;
    document.dispatchEvent(new Event("grounded:collections"));
    const cards = state.collections.map(card);
    $("kb-list").replaceChildren(...cards);
    if (can("editor")) await Promise.all(cards.map(fill));
  } catch (err) {
    toast(describe(err), true);
  }
}

function card(c) {
  const node = fromTemplate("kb-template", translate);
  node.dataset.name = c.name;
  node.querySelector(".kb-name").textContent = c.name;
  const status = node.querySelector(".kb-status");
  status.textContent = t(`kb.status.${c.status}`);
  status.classList.add(c.status);
  node.querySelector(".kb-desc").textContent = c.description;
  node.querySelector(".kb-model").textContent = c.embedder_model_id
    ? t("kb.model", { model: c.embedder_model_id, dim: c.embedder_dim, generation: c.generation }) : t("kb.nomodel");
  const del = node.querySelector(".kb-delete");
  del.setAttribute("aria-label", t("kb.deletename", { name: c.name }));
  del.hidden = c.name === "default" || c.status === "deleting";
  del.addEventListener("click", () => remove(c.name));
  node.querySelector(".source-form").addEventListener("submit", (e) => addSource(e, c.name));
  applyRole(node);
  if (c.name === "default" || c.status === "deleting") del.hidden = true;
  return node;
}

async function fill(node) {
  const name = node.dataset.name;
  try {
    const [sources, jobs] = await Promise.all([
      api(`/v1/collections/${encodeURIComponent(name)}/sources`),
      api(`/v1/jobs?collection=${encodeURIComponent(name)}&limit=10`),
    ]);
    node.querySelector(".sources").replaceChildren(...sources.items.map((s) => sourceItem(s, name)));
    node.querySelector(".jobs").replaceChildren(...jobs.items.map(jobItem));
    if (jobs.items.some((j) => j.status === "queued" || j.status === "running")) {
      clearTimeout(timer);
      timer = setTimeout(load, POLL_MS);
    }
  } catch (err) {
    if (err.status !== 404 && err.status !== 409) toast(describe(err), true);
  }
}

function sourceItem(s, collection) {
  const pause = el("button", { type: "button", onclick: () => patch(s.id, { paused: !s.paused }) },
    t(s.paused ? "kb.resume" : "kb.pause"));
  const sync = el("button", { type: "button", onclick: () => run(collection, s.id) }, t("kb.syncnow"));
  const del = el("button", { type: "button", class: "danger", onclick: () => removeSource(s) }, t("common.delete"));
  const when = s.paused ? t("kb.paused") : s.schedule
    ? t("kb.next", { schedule: s.schedule, tz: s.timezone, when: formatTime(s.next_run_at) }) : t("kb.ondemand");
  return el("li", { class: "source" },
    el("code", { text: s.path }),
    el("span", { class: "hint", text: ` ${when} · ${t("kb.docs", { n: s.documents })}` }),
    el("span", { class: "hint", text: ` ${t("kb.globs", { include: s.include.join(", ") || "**/*", exclude: s.exclude.join(", ") || "–" })}` }),
    el("span", { class: "buttons" }, pause, sync, del));
}

function jobItem(j) {
  const p = j.progress || {};
  const counts = ["files_done", "files_seen", "added", "changed", "deleted", "failed", "chunks_embedded"]
    .filter((k) => p[k] !== undefined).map((k) => `${t(`job.${k}`)} ${p[k]}`).join(" · ");
  const bar = p.files_seen ? el("progress", { max: p.files_seen, value: p.files_done || 0,
    "aria-label": t("job.progress", { id: j.id }) }) : null;
  return el("li", { class: `job ${j.status}` },
    el("span", { text: `#${j.id} ${t(`job.type.${j.type}`)} · ` }),
    el("span", { class: `badge ${j.status}`, text: t(`job.status.${j.status}`) }), bar,
    el("span", { class: "hint", text: ` ${counts} · ${formatTime(j.created_at)}` }),
    j.error ? el("p", { class: "error", text: j.error }) : null);
}

const split = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);

async function create(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api("/v1/collections", { method: "POST", body: { name: form.name.value.trim(), description: form.description.value } });
    form.reset();
    toast(t("kb.created"));
    await load();
  } catch (err) { toast(describe(err), true); }
}

async function remove(name) {
  if (!window.confirm(t("kb.confirmdelete", { name }))) return;
  try {
    await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
    await load();
  } catch (err) { toast(describe(err), true); }
}

async function addSource(event, collection) {
  event.preventDefault();
  const f = event.target;
  const body = { path: f.path.value.trim(), timezone: f.timezone.value.trim() || "UTC", schedule: f.schedule.value.trim() || null };
  if (split(f.include.value).length) body.include = split(f.include.value);
  if (split(f.exclude.value).length) body.exclude = split(f.exclude.value);
  try {
    await api(`/v1/collections/${encodeURIComponent(collection)}/sources`, { method: "POST", body });
    toast(t("kb.sourceadded"));
    await load();
  } catch (err) { toast(describe(err), true); }
}

async function patch(id, body) {
  try { await api(`/v1/sources/${id}`, { method: "PATCH", body }); await load(); } catch (err) { toast(describe(err), true); }
}

async function run(collection, sourceId) {
  try {
    await api("/v1/jobs", { method: "POST", body: { type: "reindex", collection, source_id: sourceId } });
    await load();
  } catch (err) { toast(describe(err), true); }
}

async function removeSource(s) {
  if (!window.confirm(t("kb.confirmsource", { path: s.path }))) return;
  try { await api(`/v1/sources/${s.id}`, { method: "DELETE" }); await load(); } catch (err) { toast(describe(err), true); }
}
