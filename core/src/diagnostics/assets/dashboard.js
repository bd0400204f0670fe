// rask dashboard: draws every page from the scheduler's JSON, and performance
// reports from the data embedded in them. Plain DOM and <canvas>; nothing is
// fetched from the network but the scheduler's own endpoints.
"use strict";

const STATE = { released: 0, waiting: 1, noWorker: 2, queued: 3, processing: 4, memory: 5, erred: 6 };
const TRANSFER = 0;
const SPILL = 1;
const LIVE_WINDOW = 20; // seconds of task stream shown live
const MAX_KEPT_BARS = 50000;
// Rows of one worker in the task stream, at most.
const MAX_THREAD_ROWS = 64;

// ---- small helpers ---------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function section(title, id) {
  const s = el("section", { id });
  s.append(el("h2", {}, title));
  return s;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function opColor(name, alpha) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsla(${h % 360}, 62%, 52%, ${alpha === undefined ? 1 : alpha})`;
}

function barColor(ops, op) {
  if (op === TRANSFER) return "#dc2626";
  if (op === SPILL) return "#f59e0b";
  return opColor(ops[op] || "?");
}

function sizeCanvas(canvas, height) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 800;
  canvas.style.height = height + "px";
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

// ---- the model: what the pages draw ----------------------------------------

class Model {
  constructor() {
    this.now = 0;
    this.workers = [];
    this.states = [];
    this.stateNames = [];
    this.groups = [];
    this.ops = [];
    this.bars = [];
    this.barsSeen = 0;
    this.samples = [];
    this.nextBar = 0;
    this.nextSample = 0;
    this.lanes = new Map(); // worker id -> end times of its lanes
  }

  take(view) {
    this.now = view.now;
    this.workers = view.workers;
    this.states = view.states;
    this.stateNames = view.state_names;
    this.groups = view.groups;
    this.ops = view.ops;
    for (const bar of view.bars) this.place(bar);
    this.barsSeen += view.bars.length;
    if (this.bars.length > MAX_KEPT_BARS) this.bars.splice(0, this.bars.length - MAX_KEPT_BARS);
    this.samples.push(...view.samples);
    if (this.samples.length > 7200) this.samples.splice(0, this.samples.length - 7200);
    this.nextBar = view.next_bar;
    this.nextSample = view.next_sample;
  }

  // Puts a task's bar on the row of the worker thread that ran it;
  // transfers and spills go on the worker's thin top row.
  place(bar) {
    if (bar.op === TRANSFER || bar.op === SPILL) {
      bar.lane = -1;
    } else {
      let lanes = this.lanes.get(bar.worker);
      if (!lanes) { lanes = []; this.lanes.set(bar.worker, lanes); }
      // The worker says which thread; no more rows than it has threads.
      const worker = this.workers.find((w) => w.id === bar.worker);
      const lane = Math.min(bar.thread | 0, (worker ? Math.max(1, worker.threads) : MAX_THREAD_ROWS) - 1, MAX_THREAD_ROWS - 1);
      while (lanes.length <= lane) lanes.push(0);
      lanes[lane] = Math.max(lanes[lane], bar.end);
      bar.lane = lane;
    }
    this.bars.push(bar);
  }

  workerName(id) {
    const w = this.workers.find((w) => w.id === id);
    return w ? w.name : "worker " + id;
  }

  // Progress per op, summed over its groups.
  progress() {
    const byOp = new Map();
    for (const g of this.groups) {
      const p = byOp.get(g.op) || { op: g.op, done: 0, memory: 0, processing: 0, waiting: 0, erred: 0, total: 0 };
      const s = g.states;
      p.done += s[STATE.released];
      p.memory += s[STATE.memory];
      p.processing += s[STATE.processing];
      p.waiting += s[STATE.waiting] + s[STATE.noWorker] + s[STATE.queued];
      p.erred += s[STATE.erred];
      p.total += s.reduce((a, b) => a + b, 0);
      byOp.set(g.op, p);
    }
    return [...byOp.values()].sort((a, b) => a.op.localeCompare(b.op));
  }

  // Progress per op from the bars alone (a report: every task shown finished).
  progressFromBars() {
    const byOp = new Map();
    for (const b of this.bars) {
      if (b.lane < 0) continue;
      const op = this.ops[b.op] || "?";
      const p = byOp.get(op) || { op, done: 0, memory: 0, processing: 0, waiting: 0, erred: 0, total: 0 };
      p.done += 1;
      p.total += 1;
      byOp.set(op, p);
    }
    return [...byOp.values()].sort((a, b) => a.op.localeCompare(b.op));
  }
}

// ---- drawings --------------------------------------------------------------

function drawTaskStream(canvas, model, from, to, onlyWorker) {
  const workers = model.workers.map((w) => w.id);
  for (const b of model.bars) if (!workers.includes(b.worker)) workers.push(b.worker);
  const shown = workers.filter((w) => onlyWorker === undefined || w === onlyWorker).sort((a, b) => a - b);
  const laneHeight = 9, ioHeight = 4, gap = 6, left = 110;
  const rows = shown.map((w) => ({ w, lanes: Math.max(1, (model.lanes.get(w) || []).length) }));
  const height = Math.max(60, rows.reduce((h, r) => h + ioHeight + r.lanes * laneHeight + gap, 20));
  const { ctx, width } = sizeCanvas(canvas, Math.min(height, 600));
  const scaleY = Math.min(1, 600 / height);
  ctx.clearRect(0, 0, width, height);
  const span = Math.max(to - from, 1e-3);
  const x = (t) => left + ((t - from) / span) * (width - left - 10);
  let y = 4;
  const top = new Map();
  for (const r of rows) {
    top.set(r.w, y);
    ctx.fillStyle = "#6b7385";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(model.workerName(r.w).slice(0, 16), 4, y + 10);
    ctx.fillStyle = "#eef0f4";
    ctx.fillRect(left, y, width - left - 10, (ioHeight + r.lanes * laneHeight) * scaleY);
    y += (ioHeight + r.lanes * laneHeight + gap) * scaleY;
  }
  let drawn = 0;
  for (const b of model.bars) {
    if (b.end < from || b.start > to || !top.has(b.worker)) continue;
    const x0 = x(Math.max(b.start, from));
    const w = Math.max(1, x(Math.min(b.end, to)) - x0);
    const y0 = top.get(b.worker) + (b.lane < 0 ? 0 : (ioHeight + b.lane * laneHeight) * scaleY);
    ctx.fillStyle = barColor(model.ops, b.op);
    ctx.fillRect(x0, y0, w, Math.max(1, (b.lane < 0 ? ioHeight : laneHeight - 1) * scaleY));
    drawn++;
  }
  ctx.fillStyle = "#6b7385";
  ctx.fillText(`${span.toFixed(1)} s`, width - 60, Math.min(height, 600) - 4);
  canvas.dataset.bars = String(model.barsSeen);
  canvas.dataset.rows = rows.map((r) => r.lanes).join(",");
  canvas.dataset.drawn = String(drawn);
}

function drawTimeline(canvas, samples, from, to) {
  const { ctx, width, height } = sizeCanvas(canvas, 120);
  ctx.clearRect(0, 0, width, height);
  const shown = samples.filter((s) => s.time >= from && s.time <= to);
  if (shown.length < 2) {
    ctx.fillStyle = "#6b7385";
    ctx.fillText("(samples are taken once a second)", 10, 20);
    return;
  }
  const top = Math.max(1, ...shown.map((s) => s.managed + s.unmanaged + s.spilled));
  const span = Math.max(to - from, 1e-3);
  const x = (t) => 40 + ((t - from) / span) * (width - 50);
  const y = (v) => height - 14 - (v / top) * (height - 24);
  const layers = [
    ["spilled", "#9ca3af", (s) => s.managed + s.unmanaged + s.spilled],
    ["unmanaged", "#93c5fd", (s) => s.managed + s.unmanaged],
    ["managed", "#2563eb", (s) => s.managed],
  ];
  for (const [, color, value] of layers) {
    ctx.beginPath();
    ctx.moveTo(x(shown[0].time), y(0));
    for (const s of shown) ctx.lineTo(x(s.time), y(value(s)));
    ctx.lineTo(x(shown[shown.length - 1].time), y(0));
    ctx.closePath();
    ctx.fillStyle = color;
    ctx.fill();
  }
  ctx.fillStyle = "#6b7385";
  ctx.fillText(bytes(top), 2, 12);
}

function legend(items) {
  const box = el("div", { class: "legend" });
  for (const [label, color] of items) box.append(el("span", {}, el("i", { style: `background:${color}` }), label));
  return box;
}

function stateChips(model) {
  const box = el("div", { class: "chips", id: "states" });
  model.stateNames.forEach((name, i) => {
    box.append(el("span", { class: "chip", "data-state": name }, name, el("b", {}, model.states[i] || 0)));
  });
  return box;
}

function progressRows(model) {
  const box = el("div", { id: "progress" });
  const rows = model.progress();
  if (rows.length === 0) box.append(el("div", { class: "empty" }, "no tasks"));
  for (const p of rows) {
    const bar = el("div", { class: "bar" });
    let at = 0;
    const part = (n, color) => {
      if (!n) return;
      const w = (100 * n) / p.total;
      bar.append(el("span", { style: `left:${at}%;width:${w}%;background:${color}` }));
      at += w;
    };
    part(p.done, opColor(p.op, 0.45));
    part(p.memory, opColor(p.op));
    part(p.processing, opColor(p.op, 0.2));
    part(p.erred, "#111");
    box.append(el("div", { class: "progress-row", "data-op": p.op },
      el("span", { class: "name", title: p.op }, p.op), bar,
      el("span", { class: "count" }, `${p.done + p.memory} / ${p.total}` + (p.erred ? ` · ${p.erred} erred` : ""))));
  }
  return box;
}

function memoryRows(model) {
  const box = el("div", { id: "memory" });
  const top = Math.max(1, ...model.workers.map((w) => Math.max(w.memory_limit, w.rss + w.spilled)));
  for (const w of model.workers) {
    const bar = el("div", { class: "bar" });
    const managed = Math.min(w.managed, w.rss || w.managed);
    const unmanaged = Math.max(0, w.rss - managed);
    let at = 0;
    for (const [n, color] of [[managed, "#2563eb"], [unmanaged, "#93c5fd"], [w.spilled, "#9ca3af"]]) {
      const width = (100 * n) / top;
      bar.append(el("span", { style: `left:${at}%;width:${width}%;background:${color}` }));
      at += width;
    }
    if (w.memory_limit) bar.append(el("span", { style: `left:${(100 * w.memory_limit) / top - 0.3}%;width:2px;background:#c2410c` }));
    box.append(el("div", { class: "progress-row" }, el("span", { class: "name" }, w.name), bar,
      el("span", { class: "count" }, bytes(w.rss) + (w.memory_limit ? " / " + bytes(w.memory_limit) : ""))));
  }
  if (model.workers.length === 0) box.append(el("div", { class: "empty" }, "no workers"));
  return box;
}

function workersTable(model) {
  const head = ["name", "address", "threads", "memory", "limit", "managed", "spilled", "CPU", "processing", "in memory", "bytes in", "bytes out", "plugins"];
  const table = el("table", { id: "workers-table" });
  const tr = el("tr");
  head.forEach((h, i) => tr.append(el("th", { class: i >= 2 && i < 12 ? "num" : "" }, h)));
  table.append(el("thead", {}, tr));
  const body = el("tbody");
  for (const w of model.workers) {
    const row = el("tr", { "data-worker-name": w.name, "data-worker-id": w.id });
    const link = el("a", { href: `${base()}/workers/${w.id}` }, w.name);
    row.append(el("td", {}, link), el("td", {}, w.address || "(in process)"));
    for (const v of [w.threads, bytes(w.rss), w.memory_limit ? bytes(w.memory_limit) : "none", bytes(w.managed),
      bytes(w.spilled), `${w.cpu.toFixed(0)} %`, w.processing, w.in_memory, bytes(w.bytes_received), bytes(w.bytes_sent)]) {
      row.append(el("td", { class: "num" }, v));
    }
    row.append(el("td", {}, w.plugins.join(", ") || "–"));
    body.append(row);
  }
  table.append(body);
  return table;
}

// ---- graph page ------------------------------------------------------------

// Layers by longest path from the inputs; within a layer, by name.
function layered(nodes, inputsOf) {
  const depth = new Map();
  const visiting = new Set();
  const d = (n) => {
    if (depth.has(n)) return depth.get(n);
    if (visiting.has(n)) return 0;
    visiting.add(n);
    const v = Math.max(-1, ...inputsOf(n).map(d)) + 1;
    depth.set(n, v);
    return v;
  };
  nodes.forEach(d);
  const layers = [];
  for (const n of nodes) (layers[depth.get(n)] ||= []).push(n);
  return layers;
}

function graphSvg(view, taskLevel) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  let nodes, inputsOf, label, fill;
  if (taskLevel && view.tasks) {
    nodes = view.tasks.map((_, i) => i);
    inputsOf = (i) => view.tasks[i].deps.filter((d) => d < view.tasks.length);
    label = (i) => view.tasks[i].key;
    const colors = { memory: "#2563eb", processing: "#86efac", waiting: "#e5e7eb", queued: "#e5e7eb", "no-worker": "#fca5a5", erred: "#111", released: "#c7d2fe" };
    fill = (i) => colors[view.tasks[i].state] || "#ddd";
  } else {
    const index = new Map(view.groups.map((g, i) => [g.name, i]));
    nodes = view.groups.map((_, i) => i);
    inputsOf = (i) => view.groups[i].inputs.map((n) => index.get(n)).filter((x) => x !== undefined);
    label = (i) => { const g = view.groups[i]; return `${g.name} (${g.states.reduce((a, b) => a + b, 0)})`; };
    fill = (i) => {
      const g = view.groups[i];
      const total = g.states.reduce((a, b) => a + b, 0) || 1;
      return (g.states[STATE.erred] ? "#111" : opColor(g.op, 0.25 + 0.75 * ((g.states[STATE.memory] + g.states[STATE.released]) / total)));
    };
  }
  const layers = layered(nodes, inputsOf);
  const w = taskLevel ? 120 : 200, h = 26, gx = 40, gy = 10;
  const pos = new Map();
  layers.forEach((layer, li) => layer.forEach((n, k) => pos.set(n, [20 + li * (w + gx), 20 + k * (h + gy)])));
  const width = 40 + layers.length * (w + gx);
  const height = 40 + Math.max(1, ...layers.map((l) => l.length)) * (h + gy);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const n of nodes) {
    const [x2, y2] = pos.get(n);
    for (const i of inputsOf(n)) {
      const [x1, y1] = pos.get(i);
      const line = document.createElementNS(NS, "path");
      line.setAttribute("d", `M${x1 + w},${y1 + h / 2} C${x1 + w + gx / 2},${y1 + h / 2} ${x2 - gx / 2},${y2 + h / 2} ${x2},${y2 + h / 2}`);
      line.setAttribute("stroke", "#9ca3af");
      line.setAttribute("fill", "none");
      svg.append(line);
    }
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n);
    const g = document.createElementNS(NS, "g");
    g.setAttribute("class", "node");
    const rect = document.createElementNS(NS, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: h, rx: 4, fill: fill(n), stroke: "#6b7385" })) rect.setAttribute(k, v);
    const text = document.createElementNS(NS, "text");
    text.setAttribute("x", x + 6);
    text.setAttribute("y", y + 17);
    const full = label(n);
    text.textContent = full.length > (w / 7) ? full.slice(0, w / 7 - 1) + "…" : full;
    const title = document.createElementNS(NS, "title");
    title.textContent = full;
    g.append(rect, text, title);
    svg.append(g);
  }
  return svg;
}

// ---- pages -----------------------------------------------------------------

function base() {
  return document.body.dataset.base || "";
}

function setLive(ok, text) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = text;
  live.classList.toggle("down", !ok);
}

function statusPage(main, model, report) {
  const states = section("Tasks by state", "tasks-by-state");
  const stream = section("Task stream", "task-stream");
  const canvas = el("canvas", { id: "task-stream-canvas" });
  stream.append(canvas, legend([["transfer (bytes fetched)", "#dc2626"], ["spill", "#f59e0b"]]));
  const progress = section("Progress by op", "progress-section");
  const memory = section("Cluster memory by worker", "memory-section");
  memory.append(legend([["managed", "#2563eb"], ["unmanaged", "#93c5fd"], ["spilled", "#9ca3af"], ["limit", "#c2410c"]]));
  const timeline = section("Memory over time", "timeline");
  const timelineCanvas = el("canvas", { id: "timeline-canvas" });
  timeline.append(timelineCanvas);
  const row = el("div", { class: "row" }, progress, memory);
  main.append(states, stream, row, timeline);
  let body = { states: null, progress: null, memory: null };
  return () => {
    const swap = (key, parent, node) => {
      if (body[key]) body[key].replaceWith(node); else parent.append(node);
      body[key] = node;
    };
    swap("states", states, stateChips(model));
    swap("progress", progress, progressRows(model));
    swap("memory", memory, memoryRows(model));
    const from = report ? report.from : model.now - LIVE_WINDOW;
    const to = report ? report.to : model.now;
    drawTaskStream(canvas, model, from, to);
    drawTimeline(timelineCanvas, model.samples, report ? from : model.now - 300, to);
  };
}

function workersPage(main, model) {
  const s = section("Workers", "workers");
  main.append(s);
  let table = null;
  return () => {
    const next = workersTable(model);
    if (table) table.replaceWith(next); else s.append(next);
    table = next;
    s.dataset.count = String(model.workers.length);
  };
}

function workerPage(main, model, id) {
  const facts = section("Worker", "worker");
  const stream = section("Its task stream", "task-stream");
  const canvas = el("canvas", { id: "task-stream-canvas" });
  stream.append(canvas);
  main.append(facts, stream);
  let list = null;
  return () => {
    const w = model.workers.find((w) => w.id === id);
    const dl = el("dl", { class: "facts" });
    if (!w) dl.append(el("dt", {}, "gone"), el("dd", {}, `worker ${id} is not connected`));
    else for (const [k, v] of [["name", w.name], ["address", w.address || "(in process)"], ["pid", w.pid], ["threads", w.threads],
      ["memory", bytes(w.rss)], ["limit", w.memory_limit ? bytes(w.memory_limit) : "none"], ["managed", bytes(w.managed)],
      ["spilled", bytes(w.spilled)], ["CPU", `${w.cpu.toFixed(0)} %`], ["processing", w.processing], ["executing", w.executing],
      ["results held", w.in_memory], ["bytes fetched", bytes(w.bytes_received)], ["bytes served", bytes(w.bytes_sent)],
      ["paused", w.paused ? "yes" : "no"], ["plugins", w.plugins.join(", ") || "–"]]) dl.append(el("dt", {}, k), el("dd", {}, v));
    if (list) list.replaceWith(dl); else facts.append(dl);
    list = dl;
    drawTaskStream(canvas, model, model.now - LIVE_WINDOW, model.now, id);
  };
}

async function getJson(path) {
  const response = await fetch(base() + path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

function poll(path, every, draw) {
  const tick = async () => {
    try {
      draw(await getJson(path));
      setLive(true, "live");
    } catch (e) {
      setLive(false, String(e.message || e));
    }
    setTimeout(tick, every);
  };
  tick();
}

function graphPage(main) {
  const s = section("Task graph", "graph");
  const toggle = el("label", {}, el("input", { type: "checkbox", id: "task-level" }), " task by task (graphs of up to 500 tasks)");
  const info = el("div", { class: "legend", id: "graph-info" });
  const holder = el("div", { id: "graph-svg", style: "overflow:auto;max-height:75vh" });
  s.append(toggle, info, holder);
  main.append(s);
  poll("/api/v1/dashboard/graph?max_tasks=500", 2000, (view) => {
    const taskLevel = document.getElementById("task-level").checked && !!view.tasks;
    info.textContent = `${view.ntasks} tasks in ${view.groups.length} groups` + (view.tasks ? "" : " (too many to draw one by one)");
    holder.replaceChildren(graphSvg(view, taskLevel));
  });
}

function systemPage(main) {
  const s = section("Scheduler", "system");
  const chart = section("Event loop: busy fraction (blue) and messages per second (orange), last 5 minutes", "system-chart");
  const canvas = el("canvas", { id: "system-canvas" });
  chart.append(canvas);
  main.append(s, chart);
  const history = [];
  let lastCpu = null;
  poll("/api/v1/dashboard/system", 1000, (v) => {
    const cpu = lastCpu ? (100 * (v.cpu_seconds - lastCpu.cpu)) / Math.max(1e-3, v.uptime - lastCpu.at) : 0;
    lastCpu = { cpu: v.cpu_seconds, at: v.uptime };
    history.push({ t: v.uptime, busy: v.busy_fraction, rate: v.messages_per_second });
    if (history.length > 300) history.shift();
    const dl = el("dl", { class: "facts", id: "system-facts" });
    for (const [k, val] of [["uptime", `${v.uptime.toFixed(0)} s`], ["process CPU", `${cpu.toFixed(0)} % (${v.cpu_seconds.toFixed(1)} s in all)`],
      ["process memory", bytes(v.rss)], ["event loop busy", `${(100 * v.busy_fraction).toFixed(1)} %`],
      ["messages", `${v.messages_per_second.toFixed(0)} /s (${v.messages} in all)`], ["events", `${v.events_per_second.toFixed(0)} /s (${v.events} in all)`],
      ["tasks", v.ntasks], ["workers", v.workers], ["clients", v.clients]]) dl.append(el("dt", {}, k), el("dd", {}, val));
    s.replaceChildren(el("h2", {}, "Scheduler"), dl);
    const { ctx, width, height } = sizeCanvas(canvas, 140);
    ctx.clearRect(0, 0, width, height);
    const top = Math.max(1, ...history.map((h) => h.rate));
    const line = (value, color) => {
      ctx.beginPath();
      history.forEach((h, i) => {
        const x = 10 + (i / 299) * (width - 20);
        const y = height - 10 - value(h) * (height - 20);
        if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      });
      ctx.strokeStyle = color;
      ctx.stroke();
    };
    line((h) => h.busy, "#2563eb");
    line((h) => h.rate / top, "#f59e0b");
  });
}

function jobsPage(main) {
  const s = section("Jobs", "jobs");
  main.append(s);
  poll("/api/v1/dashboard/jobs", 2000, (v) => {
    s.replaceChildren(el("h2", {}, "Jobs"));
    if (v.error) { s.append(el("div", { class: "empty" }, v.error)); return; }
    s.append(el("div", { class: "legend" }, `${v.backend}: ${v.workers} workers connected, target ${v.target}` +
      (v.adaptive ? `, adapting between ${v.adaptive[0]} and ${v.adaptive[1]}` : "") + `, ${v.submitted} submitted`));
    const table = el("table", { id: "jobs-table" });
    table.append(el("thead", {}, el("tr", {}, ...["job", "state", "workers", "walltime left"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const j of v.jobs) {
      body.append(el("tr", { "data-job": j.id }, el("td", {}, j.id), el("td", {}, j.state), el("td", {}, j.workers),
        el("td", {}, j.remaining_seconds == null ? "–" : `${j.remaining_seconds} s`)));
    }
    table.append(body);
    s.append(table);
  });
}

// Live pages follow the scheduler over server-sent events.
function follow(model, draw, maxBars) {
  const url = `${base()}/api/v1/dashboard/events?max_bars=${maxBars}`;
  const source = new EventSource(url);
  source.addEventListener("status", (e) => {
    model.take(JSON.parse(e.data));
    setLive(true, "live");
    draw();
  });
  source.onerror = () => setLive(false, "reconnecting…");
}

function start() {
  const page = document.body.dataset.page;
  const main = document.getElementById("page");
  const model = new Model();
  const report = window.RASK_REPORT;
  if (report) {
    for (const view of report.views) model.take(view);
    model.progress = model.progressFromBars;
    const bars = model.bars.filter((b) => b.lane >= 0);
    report.from = Math.min(report.started, ...bars.map((b) => b.start));
    report.to = Math.max(report.finished, ...bars.map((b) => b.end));
    const draw = statusPage(main, model, report);
    draw();
    window.addEventListener("resize", draw);
    return;
  }
  if (page === "status") follow(model, statusPage(main, model), 5000);
  else if (page === "workers") follow(model, workersPage(main, model), 0);
  else if (page === "worker") follow(model, workerPage(main, model, Number(document.body.dataset.worker)), 5000);
  else if (page === "graph") graphPage(main);
  else if (page === "system") systemPage(main);
  else if (page === "jobs") jobsPage(main);
}

document.addEventListener("DOMContentLoaded", start);
