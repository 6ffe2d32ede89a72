// The gateway's dashboard: plain JS on the gateway's own JSON routes and its event stream.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const cards = new Map();        // stream id -> card element
const HISTORY_PAGE = 25;
let historyOffset = 0;


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

const REASON_OUTPUTS = ["reason", "defect", "defects", "class", "label"];

function reasonOf(result) {
  // Why a part failed, from the workflow's own outputs: the first of these names it has.
  const outputs = result.outputs || {};
  for (const name of REASON_OUTPUTS) {
    const value = outputs[name];
    if (value !== undefined && value !== null && value !== "" && value !== "none") {
      return `${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`;
    }
  }
  return summarise(outputs);
}

function isImage(value) { return value && typeof value === "object" && value.type === "base64"; }

function summarise(outputs) {
  return Object.entries(outputs || {})
    .filter(([name, value]) => name !== "pass" && value !== null && typeof value !== "object")
    .map(([name, value]) => `${name}=${typeof value === "number" ? +value.toFixed(3) : value}`)
    .join("  ");
}

function small(text) {
  const element = document.createElement("small");
  element.textContent = text;
  return element;
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
      $("button.pause", card).addEventListener("click", () => control(stream.id, card.dataset.state === "paused" ? "resume" : "pause"));
      $("button.mode", card).addEventListener("click", () => setMode(stream.id, card.dataset.mode === "continuous" ? "triggered" : "continuous"));
      $("#streams").append(card);
      cards.set(stream.id, card);
      filter.add(new Option(stream.id, stream.id));
    }
    const camera = stream.camera, counters = stream.counters;
    const state = $(".state", card);
    state.textContent = camera.connected ? stream.state : "camera disconnected";
    state.className = `badge state ${camera.connected ? stream.state : "disconnected"}`;
    $(".mode", card).textContent = stream.mode;
    card.dataset.state = stream.state;
    card.dataset.mode = stream.mode;
    $("button.pause", card).textContent = stream.state === "paused" ? "Resume" : "Pause";
    $("button.mode", card).textContent = stream.mode === "continuous" ? "Triggered" : "Continuous";
    $("button.mode", card).title = `switch to ${stream.mode === "continuous" ? "triggered" : "continuous"} mode`;
    const noSignal = $(".no-signal", card);
    noSignal.hidden = camera.connected;
    $(".preview img", card).style.visibility = camera.connected ? "" : "hidden";  // no broken icon
    if (!camera.connected) {
      const why = camera.ended ? "video ended" : (camera.last_error || "connecting…");
      const retry = camera.retry_in_s === null || camera.retry_in_s === undefined
        ? "retrying" : `retrying in ${Math.ceil(camera.retry_in_s)} s`;
      noSignal.textContent = `No signal: ${why} (${retry}; ${camera.reconnects} reconnects)`;
    }
    const age = camera.last_frame_age_ms;
    const facts = [
      ["camera", camera.connected ? "connected" : "lost"],
      ["fps", camera.fps.toFixed(1)],
      ["frame age", age === null ? "-" : `${Math.round(age)} ms`],
      ["reconnects", camera.reconnects],
      ...(camera.damaged_frames ? [["damaged frames", camera.damaged_frames, "fail"]] : []),
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
    const triggerable = stream.state === "running" && camera.connected;
    if (!card.dataset.busy) button.disabled = !triggerable;
    button.title = triggerable ? "inspect the next part now"
      : !camera.connected ? "no camera signal" : `stream is ${stream.state}`;
  }
}

async function control(streamId, action) {
  const response = await api(`/streams/${encodeURIComponent(streamId)}/${action}`, { method: "POST" });
  if (response.ok) renderStreams([(await response.json()).stream]);
}

async function setMode(streamId, mode) {
  const response = await api(`/streams/${encodeURIComponent(streamId)}/mode`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ mode }),
  });
  if (response.ok) renderStreams([(await response.json()).stream]);
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
    button.disabled = card.dataset.state !== "running";
  }
}

function showResult(card, result) {
  const status = $(".trigger-status", card), banner = $(".verdict-banner", card);
  const [kind, word] = verdictOf(result);
  banner.hidden = false;
  banner.className = `verdict-banner ${kind}`;
  if (result.error) {
    banner.replaceChildren(word, small(result.error.message));
    status.className = "trigger-status failed";
    status.textContent = "";
    return;
  }
  banner.replaceChildren(word, small(result.pass === false ? reasonOf(result) : summarise(result.outputs)));
  status.className = `trigger-status done ${kind}`;
  status.textContent = `#${result.result_id}, ${result.timings.total_ms.toFixed(1)} ms`;
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
  cell(row, result.error ? result.error.message : result.pass === false ? reasonOf(result) : summarise(result.outputs));
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
    const response = await api("/stats/latency?window_s=300&buckets=10");
    if (response.ok) drawLatency((await response.json()).sources);
  } catch (_) { /* the next round will tell */ }
  setTimeout(refreshLatency, 5000);
}

const SERIES_COLOURS = ["#3b82c4", "#e0a030", "#5fd387", "#c77dff", "#ff7b73", "#8cc4ff"];

function drawLatency(sources) {
  // p50 per time slice, one line per protocol, over the window
  const svg = $("#latency-chart"), names = Object.keys(sources);
  $("#latency-empty").hidden = names.length > 0;
  svg.replaceChildren();
  if (!names.length) return;
  const width = svg.clientWidth || 500, height = 220, left = 44, right = 8, top = 10, bottom = 40;
  const values = names.flatMap((n) => sources[n].series.filter(Boolean).map((p) => p.p50_ms));
  const max = Math.max(...values, 1);
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  const plotH = height - top - bottom, plotW = width - left - right;
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    add("line", { x1: left, x2: width - right, y1: y, y2: y });
    add("text", { x: 0, y: y + 4 }, `${(max * fraction).toFixed(0)} ms`);
  }
  names.forEach((name, i) => {
    const series = sources[name].series, step = plotW / Math.max(series.length - 1, 1);
    const points = series.map((p, j) => p && `${left + j * step},${top + plotH * (1 - p.p50_ms / max)}`)
      .filter(Boolean).join(" ");
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
    add("polyline", { points, stroke: colour });
    add("text", { x: left + (i % 3) * (plotW / 3), y: height - 20 + 14 * Math.floor(i / 3), fill: colour },
      `${name} p50 ${sources[name].p50_ms.toFixed(1)} / p99 ${sources[name].p99_ms.toFixed(1)} ms`);
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
      img.addEventListener("click", () => {
        const box = $("#lightbox");
        $("img", box).src = img.src;
        box.showModal();
      });
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
