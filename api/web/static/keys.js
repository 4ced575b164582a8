// Admin views: API keys (create, list, revoke) and the audit log (when this build has one).
import { api } from "./api.js";
import { t } from "./i18n.js";
import { describe, el, formatTime, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

let keysBound = false;
export const keysView = {
  enter() {
    if (!keysBound) {
      $("key-form").addEventListener("submit", createKey);
      keysBound = true;
    }
    $("new-key").hidden = true;
    loadKeys();
  },
};

async function loadKeys() {
  try {
    const { items } = await api("/v1/keys");
    $("keys").replaceChildren(...items.map((k) => el("tr", { class: k.revoked_at ? "revoked" : null },
      el("td", { text: k.name }), el("td", {}, el("code", { text: k.prefix })),
      el("td", { text: t(`role.${k.role}`) }), el("td", { text: k.collections ? k.collections.join(", ") : t("keys.all") }),
      el("td", { text: k.revoked_at ? t("keys.revoked", { when: formatTime(k.revoked_at) }) : formatTime(k.last_used_at) }),
      el("td", {}, k.revoked_at ? null : el("button", { type: "button", class: "danger",
        "aria-label": t("keys.revokename", { name: k.name }), onclick: () => revoke(k) }, t("keys.revoke"))))));
  } catch (err) { toast(describe(err), true); }
}

async function createKey(event) {
  event.preventDefault();
  const f = event.target;
  const collections = f.collections.value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const made = await api("/v1/keys", { method: "POST",
      body: { name: f.name.value.trim(), role: f.role.value, collections: collections.length ? collections : null } });
    f.reset();
    $("new-key-value").textContent = made.key;
    $("new-key").hidden = false;
    await loadKeys();
  } catch (err) { toast(describe(err), true); }
}

async function revoke(k) {
  if (!window.confirm(t("keys.confirmrevoke", { name: k.name }))) return;
  try { await api(`/v1/keys/${k.id}`, { method: "DELETE" }); await loadKeys(); } catch (err) { toast(describe(err), true); }
}

// The audit log's columns, in this order when present; any others follow.
const COLUMNS = ["at", "key_name", "action", "collection", "object_id", "outcome", "status", "summary", "client_ip"];
const HIDDEN = new Set(["id", "payload_hash", "key_id"]);
let cursor = null;
let auditBound = false;

export const auditView = {
  enter() {
    if (!auditBound) {
      $("audit-more").addEventListener("click", () => loadAudit(true));
      auditBound = true;
    }
    loadAudit(false);
  },
};

async function loadAudit(more) {
  try {
    const page = await api(`/v1/audit?limit=100${more && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    cursor = page.next_cursor || null;
    const items = page.items || [];
    const table = $("audit");
    if (!more) {
      const keys = items.length ? Object.keys(items[0]) : [];
      const cols = [...COLUMNS.filter((c) => keys.includes(c)), ...keys.filter((k) => !COLUMNS.includes(k) && !HIDDEN.has(k))];
      table.dataset.cols = cols.join(",");
      table.tHead.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", { scope: "col", text: t(`audit.${c}`) === `audit.${c}` ? c : t(`audit.${c}`) }))));
      table.tBodies[0].replaceChildren();
    }
    const cols = (table.dataset.cols || "").split(",").filter(Boolean);
    table.tBodies[0].append(...items.map((e) => el("tr", {}, ...cols.map((c) =>
      el("td", { text: c === "at" ? formatTime(e[c]) : e[c] == null ? "" : String(e[c]) })))));
    $("audit-empty").hidden = table.tBodies[0].children.length > 0;
    $("audit-more").hidden = !cursor;
  } catch (err) {
    if (err.status === 404) document.getElementById("tab-audit").hidden = true;
    toast(describe(err), true);
  }
}
