// What the dashboard's pages share: the gateway's JSON routes, with its API key when it has one
// (asked once, kept in this browser).
"use strict";

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
