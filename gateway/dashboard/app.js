// The gateway's dashboard: plain JS on the gateway's own JSON routes and its event stream.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const cards = new Map();        // stream id -> card element
const HISTORY_PAGE = 25;
let historyOffset = 0;

// --- API access (with the gateway's API key when it has one) ---------------------------------

function apiKey() { return localStorage.getItem("gateway-api-key") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (apiKey()) headers.set("Authorization", `Bearer ${apiKey()}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    const key = prompt("This gateway needs its API key:");
    if (key) { localStorage.setItem("gateway-api-key", key); return api(path, options); }
  }
  return response;
}

async function showImage(img, path) {
  const response = await api(path, { cache: "no-store" });
  if (!response.ok) return false;
  const url = URL.createObjectURL(await response.blob());
  const old = img.dataset.url;
  img.src = url;
  img.dataset.url = url;
  if (old) URL.revokeObjectURL(old);
  return true;
}

// --- formatting ---------------------------------------------------------------------------------

function verdictOf(result) {
  if (result.error || result.error_code) return ["error", (result.error && result.error.name) || `error ${result.error_code}`];
  if (result.pass === true) return ["pass", "PASS"];
  if (result.pass === false) return ["fail", "FAIL"];
  return ["", "done"];
}

function isImage(value) { return value && typeof value === "object" && value.type === "base64"; }

function summarise(outputs) {
  return Object.entries(outputs || {})
    .filter(([name, value]) => name !== "pass" && value !== null && typeof value !== "object")
    .map(([name, value]) => `${name}=${typeof value === "number" ? +value.toFixed(3) : value}`)
    .join("  ");
}

function timeOf(iso) { return new Date(iso).toLocaleTimeString(); }

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// --- streams ------------------------------------------------------------------------------------

function renderStreams(streams) {
  const filter = $("#history-filters select[name=stream]");
  for (const stream of streams) {
    let card = cards.get(stream.id);
    if (!card) {
      card = $("#stream-card").content.firstElementChild.cloneNode(true);
      card.dataset.stream = stream.id;
      $(".name", card).textContent = stream.id;
      $("button.trigger", card).addEventListener("click", () => trigger(stream.id, card));
      $("#streams").append(card);
      cards.set(stream.id, card);
      filter.add(new Option(stream.id, stream.id));
    }
    const camera = stream.camera, counters = stream.counters;
    const state = $(".state", card);
    state.textContent = camera.connected ? stream.state : "camera disconnected";
    state.className = `badge state ${camera.connected ? stream.state : "disconnected"}`;
    $(".mode", card).textContent = stream.mode;
    const age = camera.last_frame_age_ms;
    const facts = [
      ["camera", camera.connected ? "connected" : "lost"],
      ["fps", camera.fps.toFixed(1)],
      ["frame age", age === null ? "-" : `${Math.round(age)} ms`],
      ["reconnects", camera.reconnects],
      ["pass", counters.passed || 0, "pass"],
      ["fail", counters.failed || 0, "fail"],
      ["errors", counters.errors || 0],
      ["queued", stream.pending],
    ];
    $("dl.health", card).replaceChildren(...facts.map(([term, value, className]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = term; dd.textContent = value; if (className) dd.className = className;
      div.append(dt, dd);
      return div;
    }));
    const button = $("button.trigger", card);
    const triggerable = stream.mode === "triggered" && stream.state === "running";
    if (!card.dataset.busy) button.disabled = !triggerable;
    button.title = triggerable ? "inspect the next part now" : `stream is ${stream.state}, ${stream.mode}`;
  }
}

async function trigger(streamId, card) {
  const button = $("button.trigger", card), status = $(".trigger-status", card);
  card.dataset.busy = "1";
  button.disabled = true;
  status.className = "trigger-status waiting";
  status.textContent = "Waiting for device…";
  try {
    const response = await api(`/streams/${encodeURIComponent(streamId)}/trigger`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    const result = await response.json();
    showResult(card, result);
  } catch (error) {
    status.className = "trigger-status failed";
    status.textContent = `No answer from the gateway (${error.message})`;
  } finally {
    delete card.dataset.busy;
    button.disabled = false;
  }
}

function showResult(card, result) {
  const status = $(".trigger-status", card);
  const [kind, word] = verdictOf(result);
  if (result.error) {
    status.className = "trigger-status failed";
    status.textContent = `${result.error.name}: ${result.error.message}`;
    return;
  }
  status.className = `trigger-status done ${kind}`;
  status.textContent = `Inspection complete: ${word} (#${result.result_id}, ${result.timings.total_ms.toFixed(1)} ms)`;
  const rendered = $(".rendered", card);
  const image = Object.values(result.outputs || {}).find(isImage);
  if (image) {
    $("img", rendered).src = `data:image/jpeg;base64,${image.value}`;
    rendered.hidden = false;
  }
  const table = $("table.outputs", card);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [name, value] of Object.entries(result.outputs || {})) {
    if (isImage(value)) continue;
    const row = body.insertRow();
    cell(row, name);
    cell(row, typeof value === "object" && value !== null ? JSON.stringify(value).slice(0, 200) : String(value));
  }
  table.hidden = false;
}

async function refreshPreviews() {
  if (!document.hidden) {
    await Promise.all([...cards].map(([id, card]) =>
      showImage($(".preview img", card), `/streams/${encodeURIComponent(id)}/latest_frame?quality=70`).catch(() => false)));
  }
  setTimeout(refreshPreviews, 400);
}

// --- live results -------------------------------------------------------------------------------

function addToFeed(result) {
  const feed = $("#feed");
  const row = feed.insertRow(0);
  const [kind, word] = verdictOf(result);
  cell(row, timeOf(result.received_at));
  cell(row, result.stream);
  cell(row, result.source);
  cell(row, result.result_id);
  cell(row, word, `verdict ${kind}`);
  cell(row, result.error ? result.error.message : summarise(result.outputs));
  cell(row, result.timings.total_ms.toFixed(1));
  while (feed.rows.length > 12) feed.deleteRow(-1);
}

function connect() {
  const live = $("#live");
  const token = apiKey() ? `?access_token=${encodeURIComponent(apiKey())}` : "";
  const events = new EventSource(`/events${token}`);
  events.addEventListener("open", () => { live.textContent = "live"; live.className = "badge on"; });
  events.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "badge off"; });
  events.addEventListener("streams", (event) => renderStreams(JSON.parse(event.data).streams));
  events.addEventListener("result", (event) => addToFeed(JSON.parse(event.data)));
}

// --- latency chart ------------------------------------------------------------------------------

async function refreshLatency() {
  try {
    const response = await api("/stats/latency?window_s=300");
    if (response.ok) drawLatency((await response.json()).sources);
  } catch (_) { /* the next round will tell */ }
  setTimeout(refreshLatency, 5000);
}

function drawLatency(sources) {
  const svg = $("#latency-chart"), names = Object.keys(sources);
  $("#latency-empty").hidden = names.length > 0;
  svg.replaceChildren();
  if (!names.length) return;
  const width = svg.clientWidth || 500, height = 220, left = 90, top = 20, barH = 14;
  const max = Math.max(...names.map((n) => sources[n].p99_ms), 1);
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  const rowH = Math.min(48, (height - top) / names.length);
  names.forEach((name, i) => {
    const s = sources[name], y = top + i * rowH, scale = (width - left - 120) / max;
    add("text", { x: 0, y: y + barH + 4 }, `${name} (${s.count})`);
    add("rect", { class: "p50", x: left, y, width: Math.max(s.p50_ms * scale, 1), height: barH });
    add("rect", { class: "p99", x: left, y: y + barH + 2, width: Math.max(s.p99_ms * scale, 1), height: barH });
    add("text", { x: left + s.p50_ms * scale + 6, y: y + barH - 2 }, `p50 ${s.p50_ms.toFixed(1)} ms`);
    add("text", { x: left + s.p99_ms * scale + 6, y: y + 2 * barH }, `p99 ${s.p99_ms.toFixed(1)} ms`);
  });
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
}

// --- history ------------------------------------------------------------------------------------

function historyQuery() {
  const form = new FormData($("#history-filters"));
  const query = new URLSearchParams();
  for (const [name, value] of form) {
    if (!value) continue;
    query.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value);
  }
  return query;
}

async function downloadCsv(event) {
  // With an API key the link cannot carry it: fetch with the header, then save the file.
  if (!apiKey()) return;
  event.preventDefault();
  const response = await api(event.currentTarget.getAttribute("href"));
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  const save = document.createElement("a");
  save.href = url;
  save.download = "results.csv";
  document.body.appendChild(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function loadHistory() {
  const query = historyQuery();
  $("#csv").href = `/results.csv?${query}`;
  query.set("limit", HISTORY_PAGE);
  query.set("offset", historyOffset);
  const response = await api(`/results?${query}`);
  const rows = $("#history-rows");
  if (!response.ok) {
    $("#history-summary").textContent = response.status === 404
      ? "This gateway keeps no history (history.enabled: false)."
      : `History unavailable (${response.status}).`;
    return;
  }
  const page = await response.json();
  rows.replaceChildren();
  for (const result of page.results) {
    const row = rows.insertRow();
    row.dataset.outcome = verdictOf(result)[0];
    const [kind, word] = verdictOf(result);
    cell(row, new Date(result.received_at).toLocaleString());
    cell(row, result.stream);
    cell(row, result.source);
    cell(row, result.result_id);
    cell(row, word, `verdict ${kind}`);
    cell(row, result.error_message || summarise(result.outputs));
    cell(row, result.total_ms === null ? "-" : result.total_ms.toFixed(1));
    const imageCell = row.insertCell();
    if (result.image) {
      const img = document.createElement("img");
      img.className = "thumb";
      img.alt = `stored frame of result ${result.result_id}`;
      img.addEventListener("click", () => img.classList.toggle("big"));
      imageCell.append(img);
      showImage(img, `/results/${result.id}/image`);
    }
  }
  const last = Math.min(historyOffset + page.results.length, page.total);
  $("#history-summary").textContent = page.total
    ? `${historyOffset + 1}–${last} of ${page.total} results (newest first)`
    : "No results match.";
  $("#newer").disabled = historyOffset === 0;
  $("#older").disabled = last >= page.total;
}

function setUpHistory() {
  $("#history-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    historyOffset = 0;
    loadHistory();
  });
  $("#history-filters").addEventListener("change", () => { $("#csv").href = `/results.csv?${historyQuery()}`; });
  $("#csv").addEventListener("click", downloadCsv);
  $("#newer").addEventListener("click", () => { historyOffset = Math.max(historyOffset - HISTORY_PAGE, 0); loadHistory(); });
  $("#older").addEventListener("click", () => { historyOffset += HISTORY_PAGE; loadHistory(); });
}

// --- start --------------------------------------------------------------------------------------

async function start() {
  const response = await api("/streams");
  if (response.ok) renderStreams((await response.json()).streams);
  connect();
  refreshPreviews();
  refreshLatency();
  setUpHistory();
  loadHistory();
}

start();
