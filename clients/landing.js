// The landing page's live figures: the node's own stream (`GET /figures`, one event a
// second, starting with the last minutes it retains), a chart of them, and with an admin
// key the per-channel, per-topic and per-connection detail (`GET /admin/stats`).

const MINUTES = 10;
const series = [];
const state = document.getElementById("figures-state");

const figures = new EventSource("/figures");
figures.onopen = () => { state.textContent = "live"; };
figures.onerror = () => { state.textContent = "reconnecting…"; };
figures.onmessage = (event) => {
  const figure = JSON.parse(event.data);
  series.push(figure);
  const since = figure.time - MINUTES * 60 * 1000;
  while (series.length && series[0].time < since) series.shift();
  show(figure);
  draw();
};

// Each `[data-figure]` element shows the figure its attribute names.
function show(figure) {
  for (const element of document.querySelectorAll("[data-figure]")) {
    const value = figure[element.dataset.figure];
    element.textContent = typeof value === "number" ? value.toLocaleString("en") : "–";
  }
}

// Delivered and published per second as two lines, scaled to the highest point, over the
// figures held (a minute at least).
function draw() {
  const chart = document.getElementById("chart");
  const width = 600, height = 120;
  const last = series[series.length - 1].time;
  const first = Math.min(series[0].time, last - 60 * 1000);
  const top = Math.max(1, ...series.map((f) => Math.max(f.deliveredPerSecond, f.publishedPerSecond)));
  const line = (key) => series
    .map((f) => `${((f.time - first) / (last - first) * width).toFixed(1)},${(height - f[key] / top * height).toFixed(1)}`)
    .join(" ");
  chart.querySelector(".delivered").setAttribute("points", line("deliveredPerSecond"));
  chart.querySelector(".published").setAttribute("points", line("publishedPerSecond"));
  document.getElementById("chart-top").textContent = `${top.toLocaleString("en")}/s`;
  document.getElementById("chart-points").textContent = String(series.length);
}

// The detail, for an admin key or token: held by this page only (never stored, where
// another page of the origin could read it), refreshed every two seconds.
const form = document.getElementById("sign-in");
const detail = document.getElementById("detail");
const message = document.getElementById("sign-in-state");
let key = null;
let round = 0;
let timer = null;

form.addEventListener("submit", (event) => {
  event.preventDefault();
  key = form.key.value;
  form.key.value = "";
  refresh(++round);
});

async function refresh(mine) {
  clearTimeout(timer);
  let stats;
  try {
    // An API key is `name:secret` (Basic); anything else is taken for a token (Bearer).
    const authorization = key.includes(":") ? `Basic ${btoa(key)}` : `Bearer ${key}`;
    const response = await fetch("/admin/stats", { headers: { Authorization: authorization } });
    stats = await response.json();
    if (response.status === 401 || response.status === 403) {
      key = null;
      message.textContent = `Not signed in: ${stats.error?.message || response.statusText}`;
      detail.replaceChildren();
      return;
    }
    if (!response.ok) throw new Error(stats.error?.message || response.statusText);
  } catch (error) {
    // The gateway restarting, the network: try again, still signed in.
    if (mine === round) {
      message.textContent = `Signed in; the detail is not available now: ${error.message}`;
      timer = setTimeout(() => refresh(mine), 2000);
    }
    return;
  }
  // A newer sign-in took over meanwhile.
  if (mine !== round) return;
  message.textContent = "Signed in.";
  detail.replaceChildren(
    table("Channels", ["name", "kind", "retained", "subscribers"], stats.channels),
    table("Polled topics", ["url", "intervalMs", "subscribers", "requests", "lastStatus"], stats.topics.polls),
    table("Relay upstreams", ["stream", "url", "connected", "connects", "events", "subscribers"], stats.topics.relays),
    table("Connections", ["openedAt", "connectionId", "channels", "delivered"], stats.connections.list),
  );
  timer = setTimeout(() => refresh(mine), 2000);
}

// A titled table of `rows`, one column per key; text only, never markup.
function table(title, keys, rows) {
  const section = document.createElement("section");
  const heading = section.appendChild(document.createElement("h3"));
  heading.textContent = `${title} (${rows.length})`;
  if (!rows.length) return section;
  const element = section.appendChild(document.createElement("table"));
  element.dataset.detail = title;
  const head = element.createTHead().insertRow();
  for (const key of keys) head.appendChild(document.createElement("th")).textContent = key;
  const body = element.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const key of keys) {
      const value = row[key];
      tr.insertCell().textContent = Array.isArray(value) ? value.join(", ")
        : key === "openedAt" ? new Date(value).toLocaleTimeString("en")
        : String(value ?? "");
    }
  }
  return section;
}
