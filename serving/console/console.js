// Omnistream console: plain JS against the API, logged in with an API key kept in sessionStorage.
// Everything from the API is written with textContent (never as HTML). Customer-identifying ids
// in alerts are masked before display.
"use strict";

const KEY_ITEM = "omnistream.apiKey";
const STOCK_POLL_MS = 250; // a change shows within a second of the flow writing it
const PANEL_POLL_MS = 5000;
const PII_ENTITY_TYPES = new Set(["user", "customer", "shopper", "session", "card", "email", "phone"]);
const FEED_MAX = 100;

const $ = (id) => document.getElementById(id);
const timers = [];
let stream = null; // the alert stream's AbortController
let lastAlertId = null;

function apiKey() { return sessionStorage.getItem(KEY_ITEM); }

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { logout("The key was refused (unknown or revoked). Log in again."); }
  if (!response.ok) {
    let code = "http_error", message = response.statusText;
    try { const body = await response.json(); code = body.error.code; message = body.error.message; } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    tr.appendChild(cell instanceof Node ? cell : el("td", cell.text ?? cell, cell.className));
  }
  return tr;
}

/** "3 s", "4 min", "2 h" since an RFC 3339 time. */
function age(ts) {
  if (!ts) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A customer-identifying id shown as its first and last two characters. */
function mask(id) {
  const s = String(id);
  return s.length <= 4 ? "••••" : `${s.slice(0, 2)}…${s.slice(-2)}`;
}

function entityText(entity) {
  if (!entity) return "";
  const id = PII_ENTITY_TYPES.has(entity.type) ? mask(entity.id) : entity.id;
  return `${entity.type} ${id}`;
}

const pct = (x) => `${(100 * (x || 0)).toFixed(2)} %`;

// --- login -------------------------------------------------------------------------------------

async function login(key) {
  sessionStorage.setItem(KEY_ITEM, key);
  try {
    const me = await getJson("/v1/session");
    $("who").textContent = `key ${me.key_id} · ${me.role}`;
  } catch (e) {
    sessionStorage.removeItem(KEY_ITEM);
    $("login-error").textContent = e.message;
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  start();
}

function logout(message) {
  sessionStorage.removeItem(KEY_ITEM);
  for (const t of timers.splice(0)) clearInterval(t);
  if (stream) { stream.abort(); stream = null; }
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
}

// --- stock -------------------------------------------------------------------------------------

let stockQuery = null;
let stockTimer = null;

async function refreshStock() {
  if (!stockQuery) return;
  const { sku, location } = stockQuery;
  const path = location
    ? `/v1/inventory/${encodeURIComponent(sku)}/locations/${encodeURIComponent(location)}`
    : `/v1/inventory/${encodeURIComponent(sku)}`;
  let doc;
  try {
    doc = await getJson(path);
  } catch (e) {
    $("stock-status").textContent = e.message;
    $("stock-table").hidden = true;
    $("stock-totals").replaceChildren();
    return;
  }
  const locations = location ? [doc] : doc.locations;
  const totals = location
    ? { on_hand: doc.on_hand, reserved: doc.reserved, available: doc.available }
    : { on_hand: doc.total_on_hand, reserved: doc.total_reserved, available: doc.total_available };
  $("stock-status").textContent = `${doc.sku} · as of ${age(doc.as_of || doc.updated_at)}`;
  const boxes = [["On hand", totals.on_hand, "total-on-hand"], ["Reserved", totals.reserved, "total-reserved"],
                 ["Available", totals.available, "total-available"]];
  $("stock-totals").replaceChildren(...boxes.map(([label, value, id]) => {
    const box = el("div", label);
    const number = el("b", value, value < 0 ? "neg" : "");
    number.id = id;
    box.prepend(number);
    return box;
  }));
  const body = $("stock-table").tBodies[0];
  body.replaceChildren(...locations.map((l) => row([
    l.location_id, { text: l.on_hand, className: "num" }, { text: l.reserved, className: "num" },
    { text: l.available, className: l.available < 0 ? "num neg" : "num" }, age(l.updated_at),
  ])));
  $("stock-table").hidden = false;
}

function searchStock(event) {
  event.preventDefault();
  stockQuery = { sku: $("sku").value.trim(), location: $("location").value.trim() };
  if (stockTimer) clearInterval(stockTimer);
  refreshStock();
  stockTimer = setInterval(refreshStock, STOCK_POLL_MS);
  timers.push(stockTimer);
}

// --- alerts (server-sent events over fetch, so the key goes in a header) -----------------------

function alertItem(alert) {
  const li = el("li", null, alert.severity);
  li.dataset.alertId = alert.alert_id;
  li.appendChild(el("span", alert.severity, "sev"));
  li.appendChild(el("strong", `${alert.kind} · ${entityText(alert.entity)}`));
  li.appendChild(el("div", (alert.reasons || []).join("; "), "muted"));
  li.appendChild(el("small", `${alert.status || ""} · ${alert.ts}`, "muted"));
  return li;
}

function addAlert(alert, atTop) {
  const feeds = [$("alert-feed")];
  if (alert.kind === "fraud") feeds.push($("fraud-feed"));
  for (const feed of feeds) {
    const item = alertItem(alert);
    if (atTop) feed.prepend(item); else feed.appendChild(item);
    while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  }
}

function setLive(live, text) {
  const pill = $("alerts-live");
  pill.textContent = text;
  pill.classList.toggle("live", live);
}

async function loadAlerts() {
  try {
    const { items } = await getJson("/v1/alerts?limit=50");
    $("alert-feed").replaceChildren();
    $("fraud-feed").replaceChildren();
    for (const alert of items) addAlert(alert, false);
    lastAlertId = items.length ? items[0].stream_id : null;
  } catch (e) {
    setLive(false, e.status === 403 ? "needs console role" : "unavailable");
    return false;
  }
  return true;
}

function parseEvent(block) {
  const event = { id: null, type: "message", data: [] , retry: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
    else if (field === "data") event.data.push(value);
    else if (field === "retry") event.retry = Number(value);
  }
  return event;
}

async function followAlerts() {
  let retryMs = 1000;
  while (apiKey() && stream) {
    const controller = stream;
    try {
      const headers = lastAlertId ? { "Last-Event-ID": lastAlertId } : {};
      const response = await api("/v1/alerts/stream", { headers, signal: controller.signal });
      setLive(true, "live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.retry) retryMs = event.retry;
          if (event.type === "alert" && event.data.length) {
            const alert = JSON.parse(event.data.join("\n"));
            if (event.id) { alert.stream_id = event.id; lastAlertId = event.id; }
            addAlert(alert, true);
          }
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e.status === 403) { setLive(false, "needs console role"); return; }
    }
    setLive(false, "reconnecting");
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

// --- fraud score lookup ------------------------------------------------------------------------

async function lookupScore(event) {
  event.preventDefault();
  const id = $("payment").value.trim();
  try {
    const score = await getJson(`/v1/scores/${encodeURIComponent(id)}`);
    $("score-result").textContent =
      `${score.decision} · score ${score.score.toFixed(3)} · ${(score.reasons || []).join("; ") || "no reasons"}`;
  } catch (e) {
    $("score-result").textContent = e.message;
  }
}

// --- recommendations preview -------------------------------------------------------------------

async function previewRecs(event) {
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [name, id] of [["user_id", "rec-user"], ["session_id", "rec-session"], ["location_id", "rec-location"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  try {
    const answer = await getJson(`/v1/recommendations?${params}`);
    $("rec-status").textContent = `variant ${answer.variant} · request ${answer.request_id.slice(0, 8)}…`;
    $("rec-items").replaceChildren(...answer.items.map((i) => el("li", `${i.sku} · ${i.score.toFixed(3)} · ${i.reason}`)));
  } catch (e) {
    $("rec-status").textContent = e.message;
  }
}

// --- experiments and flow health ---------------------------------------------------------------

async function refreshExperiments() {
  try {
    const { variants } = await getJson("/v1/experiments");
    $("exp-table").tBodies[0].replaceChildren(...variants.map((v) => row([
      v.variant, { text: v.share, className: "num" }, { text: v.metrics.requests, className: "num" },
      { text: v.metrics.impressions, className: "num" }, { text: v.metrics.clicks, className: "num" },
      { text: pct(v.metrics.ctr), className: "num" }, { text: pct(v.metrics.conversion_rate), className: "num" },
    ])));
  } catch (e) { /* shown as stale; the next poll retries */ }
}

/** Messages a flow has not read yet (its Kafka consumer lag), per topic in the tooltip; "—" while unknown. */
function consumerLag(flow) {
  const td = el("td", flow.consumer_lag === null ? "—" : String(flow.consumer_lag), "num");
  td.className = flow.consumer_lag ? "num neg" : "num";
  td.dataset.flow = flow.flow;
  td.title = Object.entries(flow.consumer_lag_by_topic).map(([t, n]) => `${t}: ${n}`).join("\n");
  return td;
}

async function refreshFlows() {
  try {
    const health = await getJson("/v1/flows");
    $("flow-table").tBodies[0].replaceChildren(...health.flows.map((f) => row([
      f.flow, age(f.last_write_at),
      { text: f.event_lag_s === null ? "—" : `${f.event_lag_s.toFixed(2)} s`, className: "num" },
      consumerLag(f),
      age(f.last_epoch_at),
      { text: f.records, className: "num" },
      { text: Object.values(f.dead_letters).reduce((a, b) => a + b, 0), className: "num" },
    ])));
    const reasons = Object.entries(health.dead_letters.by_reason).map(([r, n]) => `${r} ${n}`).join(", ");
    $("dlq-summary").textContent = `dead-letter stream: ${health.dead_letters.total} in all` +
      (reasons ? ` · latest ${health.dead_letters.sampled}: ${reasons}` : "");
  } catch (e) { /* the next poll retries */ }
}

function start() {
  refreshExperiments();
  refreshFlows();
  timers.push(setInterval(refreshExperiments, PANEL_POLL_MS), setInterval(refreshFlows, PANEL_POLL_MS));
  loadAlerts().then((ok) => {
    if (!ok) return;
    stream = new AbortController();
    followAlerts();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("key").value.trim()); });
  $("logout").addEventListener("click", () => logout());
  $("stock-form").addEventListener("submit", searchStock);
  $("score-form").addEventListener("submit", lookupScore);
  $("rec-form").addEventListener("submit", previewRecs);
  if (apiKey()) login(apiKey());
});
