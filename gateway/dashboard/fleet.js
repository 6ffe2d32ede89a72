// The fleet page: the gateways the broker knows, live, with a remote Trigger per stream that
// goes through the broker (queued for a gateway that is away, until its expiry).
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const POLL_MS = 2000;
const REQUEST_POLL_MS = 500;
const requests = new Map();     // "gateway/stream" -> the last remote request shown


function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function describe(request) {
  if (!request) return ["", ""];
  if (request.state === "waiting") return ["Waiting for device…", "waiting"];
  if (request.state === "expired") return [`Expired: ${request.message}`, "error"];
  const result = request.result || {};
  if (!result.success) {
    const error = result.error || {};
    return [`Error ${error.code ?? ""}: ${error.message ?? "no result"}`, "error"];
  }
  const verdict = result.pass === true ? "PASS" : result.pass === false ? "FAIL" : "done";
  const ms = result.timings && result.timings.total_ms;
  const took = ms === undefined ? "" : ` in ${Math.round(ms)} ms`;
  return [`${verdict} · result ${result.result_id}${took}`, result.pass === false ? "fail" : "pass"];
}

async function follow(key, requestId) {
  for (let attempt = 0; attempt < 100000; attempt++) {
    const response = await api(`/fleet/requests/${requestId}`);
    if (!response.ok) return;
    const request = await response.json();
    requests.set(key, request);
    render(lastGateways);
    if (request.state !== "waiting") return;
    await new Promise((resolve) => setTimeout(resolve, REQUEST_POLL_MS));
  }
}

async function trigger(gatewayId, streamId) {
  const key = `${gatewayId}/${streamId}`;
  const path = `/fleet/gateways/${encodeURIComponent(gatewayId)}/streams/${encodeURIComponent(streamId)}/trigger`;
  const response = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  const body = await response.json();
  if (!response.ok) { requests.set(key, { state: "expired", message: body.error?.message || "refused" }); render(lastGateways); return; }
  requests.set(key, body);
  render(lastGateways);
  follow(key, body.request_id);
}

function streamRow(gateway, stream) {
  const row = element("li", "fleet-stream");
  const camera = stream.camera || {};
  row.append(element("strong", "", stream.id));
  row.append(element("span", `badge ${gateway.online && camera.connected ? "on" : "off"}`,
    gateway.online ? (camera.connected ? `${stream.activity} · ${camera.fps} fps` : "camera lost") : "offline"));
  const counters = stream.counters || {};
  row.append(element("span", "muted", `pass ${counters.passed || 0} · fail ${counters.failed || 0}`));
  const button = element("button", "", "Trigger");
  button.addEventListener("click", () => trigger(gateway.gateway_id, stream.id));
  row.append(button);
  const [text, kind] = describe(requests.get(`${gateway.gateway_id}/${stream.id}`));
  row.append(element("span", `fleet-request ${kind}`, text));
  return row;
}

let lastGateways = [];

function render(gateways) {
  lastGateways = gateways;
  $("#empty").hidden = gateways.length > 0;
  const cards = gateways.map((gateway) => {
    const card = element("article", "card");
    const title = element("h2", "", gateway.gateway_id);
    title.append(" ", element("span", `badge ${gateway.online ? "on" : "off"}`, gateway.online ? "online" : "offline"));
    title.append(" ", element("span", "muted", `v${gateway.version}`));
    const list = element("ul", "fleet-streams");
    list.append(...(gateway.streams || []).map((stream) => streamRow(gateway, stream)));
    card.append(title, list);
    return card;
  });
  $("#gateways").replaceChildren(...cards);
}

async function refresh() {
  try {
    const response = await api("/fleet/gateways", { cache: "no-store" });
    const live = $("#live");
    live.className = `badge ${response.ok ? "on" : "off"}`;
    live.textContent = response.ok ? "live" : "no fleet";
    if (response.ok) render(await response.json());
    else $("#empty").textContent = (await response.json()).error?.message || "no fleet";
  } catch {
    $("#live").className = "badge off";
    $("#live").textContent = "offline";
  }
}

refresh();
setInterval(refresh, POLL_MS);
