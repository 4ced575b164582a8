// The keyed JSON API, as the page calls it: every request carries the key the user signed
// in with (kept in sessionStorage, so it goes when the tab closes).
const KEY = "grounded.key";
let unauthorized = () => {};

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** What to do when the key is refused (401): the app signs the user out. */
export function onUnauthorized(handler) { unauthorized = handler; }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const h = { ...extra };
  if (session.key) h.Authorization = `Bearer ${session.key}`;
  return h;
}

async function failure(resp) {
  let body = {};
  try { body = await resp.json(); } catch { /* not JSON: keep the status */ }
  if (resp.status === 401) unauthorized(body.message);
  return new ApiError(resp.status, body.error, body.message);
}

/** A JSON call: the parsed body, or an ApiError with the server's {error, message}. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await failure(resp);
  return resp.status === 204 ? null : resp.json();
}

/** Every item of a paged list endpoint ({items, next_cursor}), up to `max` items. */
export async function all(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** Bytes (an original, a page image) fetched with the key, as a Blob. */
export async function blob(path, signal) {
  const resp = await fetch(path, { headers: headers(), signal });
  if (!resp.ok) throw await failure(resp);
  return resp.blob();
}

/** POST /v1/chat with stream: yields {event, data} for each Server-Sent Event. */
export async function* chatStream(body, signal) {
  const resp = await fetch("/v1/chat", {
    method: "POST",
    signal,
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event) yield event;
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? { event, data: JSON.parse(data.join("\n")) } : null;
}

/** POST a file to /v1/documents with progress (fetch cannot report upload progress):
 * {status, body}; 200 means these bytes were already in. */
export function upload(file, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    if (session.key) xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body });
      else {
        if (xhr.status === 401) unauthorized(body.message);
        reject(new ApiError(xhr.status, body.error, body.message));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", null));
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [k, v] of Object.entries(fields)) if (v) form.append(k, v);
    xhr.send(form);
  });
}
