// The JobManager's dashboard: reads the REST API every two seconds and draws the cluster,
// the selected job's graph, checkpoints, watermarks and exceptions. No build step, no library.
"use strict";

let selected = null;  // the job shown (its id), or null for the newest running one

const $ = (id) => document.getElementById(id);
const svgNs = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(svgNs, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

const rate = (x) => (x >= 1e6 ? (x / 1e6).toFixed(1) + "M" : x >= 1e3 ? (x / 1e3).toFixed(1) + "k" : x.toFixed(0)) + "/s";
const seconds = (ms) => (ms / 1000).toFixed(ms < 10000 ? 2 : 0) + " s";
const bytes = (n) => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B");
const INT64_MAX_MS = 9.2e18;
function watermark(ms) {
  if (!ms) return "—";
  if (ms >= INT64_MAX_MS) return "end of input";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

function fillRows(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows);
}

function row(cells, attrs) {
  const tr = el("tr", attrs);
  for (const c of cells) tr.append(el("td", {}, String(c)));
  return tr;
}

function drawGraph(job) {
  const svg = $("job-graph");
  svg.replaceChildren();
  const vertices = job.vertices;
  // Columns by longest path from a source.
  const depth = vertices.map(() => 0);
  for (let pass = 0; pass < vertices.length; ++pass) {
    vertices.forEach((v, i) => v.inputs.forEach((in_) => { depth[i] = Math.max(depth[i], depth[in_.id] + 1); }));
  }
  const rowsAt = {};
  const pos = vertices.map((v, i) => {
    const column = depth[i];
    const r = (rowsAt[column] = (rowsAt[column] || 0) + 1) - 1;
    return { x: 10 + column * 290, y: 10 + r * 95 };
  });
  const width = 230, height = 76;
  svg.setAttribute("height", Math.max(...pos.map((p) => p.y)) + height + 20);
  vertices.forEach((v, i) => v.inputs.forEach((in_) => {
    const a = pos[in_.id], b = pos[i];
    svg.append(el("svg:line", { x1: a.x + width, y1: a.y + height / 2, x2: b.x, y2: b.y + height / 2, stroke: "#98a2b3", "stroke-width": 2 }));
    svg.append(el("svg:text", { x: (a.x + width + b.x) / 2 - 20, y: (a.y + b.y) / 2 + height / 2 - 6, fill: "#667085" }, in_.ship_strategy));
  }));
  vertices.forEach((v, i) => {
    const m = v.metrics;
    const pressure = m["backpressured-ratio-max"];
    const fill = pressure < 0.1 ? "#d1fadf" : pressure < 0.5 ? "#fef0c7" : "#fee4e2";
    const g = el("svg:g", { class: "vertex", "data-name": v.name, transform: `translate(${pos[i].x},${pos[i].y})` });
    g.append(el("svg:rect", { width, height, rx: 6, fill, stroke: "#475467" }));
    const name = v.name.length > 30 ? v.name.slice(0, 29) + "…" : v.name;
    g.append(el("svg:text", { x: 8, y: 18, "font-weight": "bold" }, name));
    g.append(el("svg:text", { x: 8, y: 36 }, `parallelism ${v.parallelism}`));
    g.append(el("svg:text", { x: 8, y: 52 }, `in ${rate(m["read-records-per-second"])}  out ${rate(m["write-records-per-second"])}`));
    g.append(el("svg:text", { x: 8, y: 68 }, `busy ${(100 * m["busy-ratio-max"]).toFixed(0)}%  back-pressured ${(100 * pressure).toFixed(0)}%`));
    g.append(el("svg:title", {}, `${v.name}\nrecords in ${m["read-records"]}, sent ${m["write-records"]}`));
    svg.append(g);
  });
}

function drawCheckpoints(checkpoints) {
  $("checkpoint-counts").textContent =
    `${checkpoints.counts.completed} completed, ${checkpoints.counts.failed} failed`;
  const history = checkpoints.history.slice(-60);
  const svg = $("checkpoint-chart");
  svg.replaceChildren();
  const max = Math.max(1, ...history.map((c) => c.end_to_end_duration));
  const w = 8;
  history.forEach((c, i) => {
    const h = Math.max(2, (88 * c.end_to_end_duration) / max);
    svg.append(el("svg:rect", { class: "checkpoint-bar", x: 4 + i * (w + 2), y: 110 - h, width: w, height: h,
                                fill: c.status === "FAILED" ? "#f04438" : "#2e90fa" }));
  });
  svg.append(el("svg:text", { x: 4, y: 12, fill: "#667085" }, `longest ${seconds(max)}`));
  fillRows("checkpoints", history.slice(-10).reverse().map((c) =>
    row([c.id, c.status, seconds(c.end_to_end_duration), `${c.max_sync_duration} / ${c.max_async_duration} ms`, bytes(c.state_size)],
        { class: "checkpoint" })));
}

async function refresh() {
  try {
    const [overview, tms, jobs] = await Promise.all([get("overview"), get("taskmanagers"), get("jobs")]);
    $("overview").textContent = `${overview.taskmanagers} TaskManagers, ${overview["slots-available"]} of ` +
      `${overview["slots-total"]} slots free, ${overview["jobs-running"]} jobs running`;
    fillRows("taskmanagers", tms.taskmanagers.map((t) =>
      row([t.id, t.host, t.slotsNumber, t.freeSlots, `${t.timeSinceLastHeartbeat} ms ago`])));
    const details = await Promise.all(jobs.jobs.map((j) => get("jobs/" + encodeURIComponent(j.id))));
    if (selected === null || !details.some((j) => j.jid === selected)) {
      const running = details.filter((j) => j.state === "RUNNING");
      const shown = running.length ? running : details;
      selected = shown.length ? shown[shown.length - 1].jid : null;
    }
    fillRows("jobs", details.map((j) => {
      const tr = row([j.jid, j.name, j.state, seconds(j.duration)], { class: "job" + (j.jid === selected ? " selected" : "") });
      tr.cells[2].className = "state-" + j.state;
      tr.onclick = () => { selected = j.jid; refresh(); };
      return tr;
    }));
    const job = details.find((j) => j.jid === selected);
    if (job) {
      $("job-title").textContent = `Job graph: ${job.jid} ${job.name} (${job.state})`;
      drawGraph(job);
      const [checkpoints, exceptions] = await Promise.all([
        get(`jobs/${encodeURIComponent(job.jid)}/checkpoints`), get(`jobs/${encodeURIComponent(job.jid)}/exceptions`)]);
      drawCheckpoints(checkpoints);
      fillRows("watermarks", job.vertices.map((v) =>
        row([v.name, watermark(v.metrics["input-watermark"]), watermark(v.metrics["output-watermark"])])));
      $("exceptions").replaceChildren(...exceptions.exceptionHistory.entries.map((e) =>
        el("li", {}, `${new Date(e.timestamp).toISOString()} ${e.taskManagerId}: ${e.message}`)));
      if (!exceptions.exceptionHistory.entries.length) $("exceptions").append(el("li", { class: "muted" }, "none"));
    }
    $("error").textContent = "";
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    $("error").textContent = String(e);
  }
}

refresh();
setInterval(refresh, 2000);
