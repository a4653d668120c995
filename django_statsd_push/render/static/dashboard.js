// django-statsd-push dashboard: each panel is one /render?format=json query, drawn as
// plain SVG (no chart library to vendor or update). After every refresh each panel
// carries data-points (non-null points drawn) and <body> carries data-state and
// data-points-total, which the headless-Chromium test reads from the dumped DOM.
// Events (/events/get_data: deploy markers) are drawn on every chart as dashed vertical
// lines labelled with their "what"; ?events=deploy,web shows only events with those
// tags, ?events=none none.
"use strict";

const RANGES = ["-5min", "-15min", "-1h", "-6h", "-24h"];
const COLORS = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1",
                "#ba43a9", "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17"];
const SVG_NS = "http://www.w3.org/2000/svg";

const params = new URLSearchParams(location.search);
const state = {
  from: params.get("from") || "-15min",
  refresh: Number(params.get("refresh") || 10),
  events: params.get("events") || "",
  prefix: (params.get("prefix") || "").replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+|\.+$/g, ""),
};

// ?prefix=<STATSD_PREFIX>: the Django side puts it first in every name, so the daemon
// writes stats.timers.<prefix>.request..., stats.<prefix>.response..., stats_counts.<prefix>...
// panels.json is written without one; aliasByNode counts nodes from the end (-3, -2)
// so the legends do not move with it.
function withPrefix(target) {
  if (!state.prefix) return target;
  // (the demo traffic's tagged series come from the stack's traffic generator, not Django: unprefixed)
  return target.replace(/\b(stats\.timers|stats\.gauges|stats\.sets|stats_counts|stats)\.(?!(?:timers|gauges|sets|demo_traffic)\.)/g,
                        `$1.${state.prefix}.`);
}

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The panel's query: JSON for the chart drawn here, or the same targets as a PNG graph
// drawn by the render API (graphite-web's look), which the panel links to.
function renderUrl(panel, format = "json") {
  const q = new URLSearchParams();
  for (const t of panel.targets) q.append("target", withPrefix(t));
  q.set("from", state.from);
  q.set("format", format);
  if (format === "png") {
    q.set("title", panel.title);
    if (panel.unit) q.set("vtitle", panel.unit);
    q.set("width", "800");
    q.set("height", "400");
  }
  return "/render?" + q.toString();
}

// 1, 2, 5 x 10^n steps so axis labels stay round.
function niceStep(span, ticks) {
  const raw = span / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  return v.toFixed(2);
}

function clock(ts) {
  const d = new Date(ts * 1000);
  return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
}

// Events in the shown range, oldest first; [] if they cannot be read (the charts still draw).
async function fetchEvents() {
  if (state.events === "none") return [];
  const q = new URLSearchParams({ from: state.from, until: "now" });
  const tags = state.events.replace(/,/g, " ").trim();
  if (tags) q.set("tags", tags);
  try {
    const response = await fetch("/events/get_data?" + q.toString(), { cache: "no-store" });
    return response.ok ? await response.json() : [];
  } catch (err) {
    return [];
  }
}

function drawEvents(svg, events, x, tMin, tMax, box) {
  let drawn = 0;
  for (const e of events) {
    if (e.when < tMin || e.when > tMax) continue;
    const at = x(e.when).toFixed(1);
    const g = el("svg:g", { class: "event", "data-when": String(e.when) });
    g.append(el("svg:title", {}, `${e.what}${e.tags.length ? " [" + e.tags.join(", ") + "]" : ""}` +
                                 `${e.data ? "\n" + e.data : ""}`));
    g.append(el("svg:line", { x1: at, x2: at, y1: box.top, y2: box.bottom, class: "event-line" }));
    g.append(el("svg:text", { x: Number(at) + 3, y: box.top + 9, class: "event-label" }, e.what));
    svg.append(g);
    drawn++;
  }
  return drawn;
}

function drawChart(svg, series, panel, events) {
  svg.replaceChildren();
  const W = 560, H = 220, L = 48, R = 10, T = 10, B = 24;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  let tMin = Infinity, tMax = -Infinity, vMax = 0, vMin = 0;
  for (const s of series) for (const [v, t] of s.datapoints) {
    tMin = Math.min(tMin, t); tMax = Math.max(tMax, t);
    if (v !== null) { vMax = Math.max(vMax, v); vMin = Math.min(vMin, v); }
  }
  if (!isFinite(tMin)) return 0;
  if (panel.max !== undefined) vMax = Math.max(vMax, panel.max);
  if (vMax === vMin) vMax = vMin + 1;
  const step = niceStep(vMax - vMin, 4);
  vMax = Math.ceil(vMax / step) * step;
  const x = (t) => L + (tMax === tMin ? 0 : (t - tMin) / (tMax - tMin)) * (W - L - R);
  // the time axis, for tests that check a marker sits where its time is
  for (const [k, v] of Object.entries({ "data-t0": tMin, "data-t1": tMax, "data-x0": L, "data-x1": W - R })) {
    svg.setAttribute(k, String(v));
  }
  const y = (v) => T + (1 - (v - vMin) / (vMax - vMin)) * (H - T - B);

  for (let v = vMin; v <= vMax + step / 2; v += step) {
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("svg:text", { x: L - 6, y: y(v) + 4, class: "ylabel" }, fmt(v)));
  }
  const tStep = niceStep(Math.max(tMax - tMin, 60), 5);
  const tickStep = Math.max(60, Math.round(tStep / 60) * 60);
  for (let t = Math.ceil(tMin / tickStep) * tickStep; t <= tMax; t += tickStep) {
    svg.append(el("svg:text", { x: x(t), y: H - 6, class: "xlabel" }, clock(t)));
  }
  series.forEach((s, i) => {
    let d = "", pen = "M", dots = 0;
    for (const [v, t] of s.datapoints) {
      if (v === null) { pen = "M"; continue; }
      d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = "L"; dots++;
    }
    if (!dots) return;
    svg.append(el("svg:path", { d, class: "line", stroke: COLORS[i % COLORS.length] }));
    if (dots === 1) {  // a lone point is invisible as a path
      const [v, t] = s.datapoints.find(([v]) => v !== null);
      svg.append(el("svg:circle", { cx: x(t), cy: y(v), r: 2.5, fill: COLORS[i % COLORS.length] }));
    }
  });
  return drawEvents(svg, events, x, tMin, tMax, { top: T, bottom: H - B });
}

function drawLegend(ul, series) {
  ul.replaceChildren();
  series.forEach((s, i) => {
    const values = s.datapoints.map(([v]) => v).filter((v) => v !== null);
    const li = el("li");
    li.append(el("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }));
    li.append(el("span", { class: "name" }, s.target));
    li.append(el("span", { class: "last" }, values.length ? fmt(values[values.length - 1]) : "–"));
    ul.append(li);
  });
}

function buildPanel(panel) {
  const section = el("section", { class: "panel", id: panel.id, "data-points": "0" });
  const h2 = el("h2", { title: panel.targets.map(withPrefix).join("\n") }, panel.title);
  h2.append(el("span", { class: "unit" }, panel.unit));
  h2.append(el("a", { class: "png", href: renderUrl(panel, "png"), target: "_blank",
                      title: "this panel as a PNG graph" }, "PNG"));
  section.append(h2, el("svg:svg", { class: "chart", role: "img", "aria-label": panel.title }),
                 el("p", { class: "message" }), el("ul", { class: "legend" }));
  document.getElementById("panels").append(section);
  return section;
}

async function refreshPanel(panel, section, events) {
  const message = section.querySelector(".message");
  try {
    const response = await fetch(renderUrl(panel), { cache: "no-store" });
    const body = await response.text();
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${body.slice(0, 300)}`);
    const series = JSON.parse(body);
    const points = series.reduce(
      (n, s) => n + s.datapoints.filter(([v]) => v !== null).length, 0);
    const marked = drawChart(section.querySelector("svg"), series, panel, events);
    section.setAttribute("data-events", String(marked));
    drawLegend(section.querySelector(".legend"), series);
    message.textContent = points ? "" : "No data yet: start some traffic (statsd-push demo-traffic).";
    section.setAttribute("data-points", String(points));
    section.setAttribute("data-series", String(series.length));
    section.removeAttribute("data-error");
    return points;
  } catch (err) {
    message.textContent = String(err.message || err);
    section.setAttribute("data-error", message.textContent);
    section.setAttribute("data-points", "0");
    return 0;
  }
}

async function refreshAll(panels, sections) {
  const events = await fetchEvents();
  const counts = await Promise.all(panels.map((p, i) => refreshPanel(p, sections[i], events)));
  document.body.setAttribute("data-events-total", String(events.length));
  document.body.setAttribute("data-points-total", String(counts.reduce((a, b) => a + b, 0)));
  document.body.setAttribute("data-state", "loaded");
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function buildRanges() {
  const nav = document.getElementById("ranges");
  for (const r of RANGES) {
    const q = new URLSearchParams(location.search);
    q.set("from", r);
    const a = el("a", { href: "?" + q.toString() }, r.replace("-", "last "));
    if (r === state.from) a.className = "current";
    nav.append(a);
  }
}

// panels.json: one record per panel (title, unit, render targets). Metric names are the
// statsd daemon's Carbon output (etsy legacy namespace): timers as
// stats.timers.<name>.<stat>, counters as stats.<name> (per second) and
// stats_counts.<name> (per flush). The tests query every target on the real render API.
async function main() {
  buildRanges();
  const response = await fetch("/static/panels.json", { cache: "no-store" });
  const panels = await response.json();
  const sections = panels.map(buildPanel);
  const refresh = () => refreshAll(panels, sections);
  await refresh();
  if (state.refresh > 0) setInterval(refresh, state.refresh * 1000);
}

main().catch((err) => {
  document.body.setAttribute("data-state", "error");
  document.getElementById("updated").textContent = "dashboard failed to load: " + err;
});
