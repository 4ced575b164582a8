// Interface text: English is in the page; Simplified Chinese is fetched when chosen.
// Elements carry data-i18n (text), data-i18n-placeholder and data-i18n-aria-label keys.
const CHOICE = "grounded.lang";
export const LANGUAGES = ["en", "zh-CN"];
const loaded = {};
let current = "en";

export function language() { return current; }

/** The saved choice, else the browser's language (any zh-* is Simplified Chinese). */
export function preferred() {
  const saved = localStorage.getItem(CHOICE);
  if (LANGUAGES.includes(saved)) return saved;
  return (navigator.languages || [navigator.language]).some((l) => /^zh\b/i.test(l || "")) ? "zh-CN" : "en";
}

/** The text of `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  const text = (loaded[current] && loaded[current][key]) ?? loaded.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

export async function setLanguage(lang, { save = false } = {}) {
  if (!loaded.en) loaded.en = JSON.parse(document.getElementById("strings").textContent);
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!loaded[lang]) {
    const resp = await fetch(`/static/i18n/${lang}.json?v=${document.body.dataset.version}`);
    loaded[lang] = await resp.json();
  }
  current = lang;
  if (save) localStorage.setItem(CHOICE, lang);
  document.documentElement.lang = lang;
  translate(document);
}

export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
}
