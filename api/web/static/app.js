// The page's entry point: language, sign-in, role, tabs. The views live in their modules.
import { api, onUnauthorized, session } from "./api.js";
import * as chat from "./chat.js";
import * as documents from "./documents.js";
import { preferred, setLanguage, t } from "./i18n.js";
import * as kb from "./kb.js";
import * as keys from "./keys.js";
import * as source from "./source.js";
import { applyRole, describe, state } from "./ui.js";

const views = { chat, documents, collections: kb, keys: keys.keysView, audit: keys.auditView };
const $ = (id) => document.getElementById(id);
let currentView = null;

function show(name) {
  for (const section of document.querySelectorAll("main > .view")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    const on = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  }
  if (currentView && views[currentView]?.leave) views[currentView].leave();
  currentView = name;
  if (views[name]?.enter) views[name].enter();
}

function signedOut(message) {
  session.clear();
  state.me = null;
  source.close();
  document.querySelector(".tabs").hidden = true;
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
  if (currentView && views[currentView]?.leave) views[currentView].leave();
  currentView = null;
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== "view-signin";
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("api-key").focus();
}

async function signedIn() {
  state.me = await api("/v1/me");
  state.collections = (await api("/v1/collections?limit=500")).items;
  const who = state.me.name ? `${state.me.name} · ${t(`role.${state.me.role}`)}` : t("signin.noauth");
  $("whoami").textContent = who;
  $("sign-out").hidden = document.body.dataset.auth !== "on";
  document.querySelector(".tabs").hidden = false;
  $("signin-error").hidden = true;
  applyRole();
  chat.init();
  documents.init();
  show("chat");
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  session.set(key);
  try {
    await signedIn();
    $("api-key").value = "";
  } catch (err) {
    signedOut(err.status === 401 ? t("signin.invalid") : describe(err));
  }
}

function tabKeys(event) {
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  const tabs = [...document.querySelectorAll(".tabs [role=tab]")].filter((b) => !b.hidden);
  const i = tabs.indexOf(document.activeElement);
  if (i < 0 || !["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
  event.preventDefault();
  const next = event.key === "Home" ? 0 : event.key === "End" ? tabs.length - 1
    : (i + (event.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length;
  tabs[next].focus();
  show(tabs[next].dataset.view);
}

async function boot() {
  await setLanguage(preferred());
  $("lang").value = document.documentElement.lang;
  $("lang").addEventListener("change", async (e) => {
    await setLanguage(e.target.value, { save: true });
    if (state.me) {
      const who = state.me.name ? `${state.me.name} · ${t(`role.${state.me.role}`)}` : t("signin.noauth");
      $("whoami").textContent = who;
    }
    for (const view of Object.values(views)) view.relabel?.();
  });
  onUnauthorized((message) => signedOut(message || t("signin.invalid")));
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signedOut(null));
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  document.querySelector(".tabs").addEventListener("keydown", tabKeys);
  source.init();
  if (session.key || document.body.dataset.auth === "off") {
    try { await signedIn(); return; } catch (err) { signedOut(describe(err)); return; }
  }
  signedOut(null);
}

boot();
