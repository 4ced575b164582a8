// Chat: pick collections, ask, show the evidence first and then the answer as it streams;
// [n] markers open the source; past conversations reopen with their citations.
import { all, api, chatStream } from "./api.js";
import { t, translate } from "./i18n.js";
import * as source from "./source.js";
import { describe, el, formatTime, fromTemplate, state, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);
const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
let conversationId = null;
let controller = null;
let bound = false;

export function init() {
  if (!bound) bind();
  bound = true;
  renderCollections();
  startConversation();
  loadHistory();
}

function bind() {
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    // Enter asks, Shift+Enter is a new line (as in every chat box).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => controller?.abort());
  $("new-chat").addEventListener("click", () => { startConversation(); $("question").focus(); });
  $("thread").addEventListener("click", openCitation);
  document.addEventListener("grounded:collections", () => renderCollections(chosenCollections()));
}

function renderCollections(selected) {
  const box = $("collections");
  for (const label of box.querySelectorAll("label")) label.remove();
  const usable = state.collections.filter((c) => c.status !== "deleting");
  box.querySelector(".empty").hidden = usable.length > 0;
  const names = usable.map((c) => c.name);
  let chosen = (selected || []).filter((n) => names.includes(n));
  if (!chosen.length) chosen = [names.includes("default") ? "default" : names[0]];
  for (const c of usable) {
    const input = el("input", { type: "checkbox", name: "collection", value: c.name, checked: chosen.includes(c.name) });
    box.append(el("label", { class: "chip", title: c.description || null }, input, " ", c.name));
  }
}

const chosenCollections = () => [...$("collections").querySelectorAll("input:checked")].map((i) => i.value);

function startConversation() {
  controller?.abort();
  conversationId = null;
  $("thread").replaceChildren();
  for (const li of $("conversations").children) li.firstChild.removeAttribute("aria-current");
}

async function loadHistory() {
  try {
    const items = (await all("/v1/conversations")).reverse();
    $("conversations").replaceChildren(...items.map((c) => {
      const button = el("button", { type: "button", class: "link", dataset: { id: c.id }, onclick: () => reopen(c.id) },
        el("span", { class: "title", text: c.title }), el("span", { class: "hint", text: formatTime(c.updated_at) }));
      if (c.id === conversationId) button.setAttribute("aria-current", "true");
      return el("li", {}, button);
    }));
  } catch (err) {
    toast(describe(err), true);
  }
}

function addTurn(question) {
  const turn = fromTemplate("turn-template", translate);
  turn.querySelector(".question").textContent = question;
  turn.cites = new Map();
  turn.evidence = new Map();
  $("thread").append(turn);
  turn.scrollIntoView({ block: "end" });
  return turn;
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || controller) return;
  const collections = chosenCollections();
  if (!collections.length) { toast(t("chat.pickone"), true); return; }
  const turn = addTurn(question);
  $("question").value = "";
  controller = new AbortController();
  busy(true);
  performance.clearMarks();
  performance.mark("grounded:ask");
  let text = "";
  try {
    const body = { message: question, collections, conversation_id: conversationId };
    for await (const { event, data } of chatStream(body, controller.signal)) {
      if (event === "evidence") showEvidence(turn, data.quotes);
      else if (event === "delta") {
        text += data.text;
        renderText(turn, text);
      } else if (event === "done") finish(turn, data);
      else if (event === "error") failed(turn, data.message);
    }
  } catch (err) {
    if (err.name === "AbortError") failed(turn, t("chat.stopped"), "stopped");
    else failed(turn, describe(err));
  } finally {
    controller = null;
    busy(false);
  }
}

function busy(on) {
  $("stop").hidden = !on;
  document.querySelector("[data-testid=ask]").disabled = on;
}

function showEvidence(turn, quotes) {
  const box = turn.querySelector(".evidence");
  const list = box.querySelector(".quotes");
  for (const q of quotes) {
    turn.evidence.set(q.index, q);
    list.append(el("li", {},
      el("blockquote", { text: q.quote }),
      el("button", { type: "button", class: "link where", dataset: { index: q.index, kind: "evidence" } },
        `[${q.index}] ${where(q)}`)));
  }
  box.hidden = quotes.length === 0;
  turn.querySelector(".pending").textContent = t("chat.writing");
  if (!performance.getEntriesByName("grounded:evidence").length) performance.mark("grounded:evidence");
}

/** "report.pdf · p. 3–4 · Results > Revenue" */
export function where(c) {
  const parts = [c.filename];
  if (c.page_start) {
    const pages = c.page_end && c.page_end !== c.page_start ? `${c.page_start}–${c.page_end}` : c.page_start;
    parts.push(t("source.page", { page: pages }));
  }
  if (c.heading) parts.push(c.heading);
  return parts.join(" · ");
}

function renderText(turn, text) {
  const box = turn.querySelector(".answer .text");
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    nodes.push(text.slice(last, m.index));
    const numbers = m[1].split(",").map((n) => n.trim());
    for (const n of numbers) {
      nodes.push(el("a", { href: `#cite-${n}`, class: "cite", "data-testid": "citation", dataset: { index: n },
        "aria-label": t("chat.citation", { n }) }, `[${n}]`));
    }
    last = m.index + m[0].length;
  }
  nodes.push(text.slice(last));
  box.replaceChildren(...nodes);
  if (text && !performance.getEntriesByName("grounded:first-text").length) performance.mark("grounded:first-text");
}

function finish(turn, body) {
  for (const c of body.citations) turn.cites.set(c.index, c);
  renderText(turn, body.answer);
  label(turn, body.mode || (body.refused ? "refused" : "generated"));
  renderSources(turn, body.citations);
  if (body.unverified?.length) {
    turn.querySelector(".answer").append(el("details", { class: "unverified" },
      el("summary", { text: t("chat.unverified", { n: body.unverified.length }) }),
      el("ul", {}, ...body.unverified.map((u) => el("li", { text: `${u.text} (${u.reason})` })))));
  }
  performance.mark("grounded:done");
  const fresh = conversationId !== body.conversation_id;
  conversationId = body.conversation_id;
  if (fresh) loadHistory();
}

function label(turn, mode) {
  const answer = turn.querySelector(".answer");
  answer.dataset.mode = mode;
  answer.setAttribute("aria-busy", "false");
  const badge = answer.querySelector(".mode");
  badge.textContent = t(`mode.${mode}`);
  badge.className = `mode ${mode}`;
  badge.hidden = false;
}

function renderSources(turn, citations) {
  if (!citations.length) return;
  turn.querySelector(".answer").append(el("ol", { class: "sources", "aria-label": t("chat.sources") },
    ...citations.map((c) => el("li", { value: c.index },
      el("button", { type: "button", class: "link where", dataset: { index: c.index, kind: "citation" } }, where(c))))));
}

function failed(turn, message, mode = "error") {
  const answer = turn.querySelector(".answer");
  answer.setAttribute("aria-busy", "false");
  answer.dataset.mode = mode;
  const pending = answer.querySelector(".pending");
  if (pending) pending.remove();
  answer.append(el("p", { class: mode === "stopped" ? "hint" : "error", role: "alert", text: message }));
}

function openCitation(event) {
  const link = event.target.closest("[data-index]");
  if (!link) return;
  event.preventDefault();
  const turn = link.closest(".turn");
  const n = Number(link.dataset.index);
  const cite = link.dataset.kind === "evidence"
    ? turn.evidence.get(n) : turn.cites.get(n) || turn.evidence.get(n);
  if (cite) source.open(cite, link);
  else toast(t("chat.notyet"));
}

async function reopen(id) {
  if (controller) return;
  try {
    const conv = await api(`/v1/conversations/${id}`);
    startConversation();
    conversationId = conv.id;
    renderCollections(conv.collections);
    let turn = null;
    for (const m of conv.messages) {
      if (m.role === "user") { turn = addTurn(m.content); continue; }
      if (!turn) turn = addTurn("");
      turn.querySelector(".answer .text").replaceChildren();
      if (m.finish_reason === "cancelled" || m.finish_reason === "error") {
        if (m.content) renderText(turn, m.content);
        failed(turn, t(`chat.${m.finish_reason === "error" ? "broke" : "stopped"}`), "stopped");
      } else finish(turn, { ...m, answer: m.content, citations: m.citations, conversation_id: conv.id });
      turn = null;
    }
    for (const li of $("conversations").children) {
      li.firstChild.toggleAttribute("aria-current", Number(li.firstChild.dataset.id) === id);
    }
  } catch (err) {
    toast(describe(err), true);
  }
}

export function relabel() {
  for (const answer of document.querySelectorAll("#thread .answer[data-mode]")) {
    const badge = answer.querySelector(".mode");
    if (!badge.hidden) badge.textContent = t(`mode.${answer.dataset.mode}`);
  }
}
