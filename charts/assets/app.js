// Weir charts: draws every window on a canvas and follows the server's live stream.
// Points arrive merged per frame; a `resync` event (or a reconnect the server cannot resume)
// refetches everything. Series are trimmed client-side to what the server retains.
"use strict";

const kiosk = new URLSearchParams(location.search).has("kiosk");
if (kiosk) document.body.classList.add("kiosk");
const grid = document.getElementById("grid");
const statusLine = document.getElementById("status");
const windows = new Map(); // "env/win" -> {view, canvas, dirty}
const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const maxPoints = () => Math.max(200, Math.round(grid.clientWidth * 2));

function key(env, win) { return env + "/" + win; }

async function fetchWindow(env, win) {
  const response = await fetch(`/api/windows/${encodeURIComponent(env)}/${encodeURIComponent(win)}?points=${maxPoints()}`);
  if (!response.ok) { removeWindow(env, win); return; }
  const view = await response.json();
  let entry = windows.get(key(env, win));
  const drawn = view.kind === "text" || view.kind === "properties" ? "list" : "canvas";
  if (entry && entry.drawn !== drawn) { entry.box.remove(); windows.delete(key(env, win)); entry = undefined; }
  if (!entry) {
    const box = document.createElement("div");
    box.className = "window";
    box.dataset.key = key(env, win);
    box.dataset.kind = view.kind;
    const title = document.createElement("h2");
    const snap = `/api/windows/${encodeURIComponent(env)}/${encodeURIComponent(win)}/snapshot.png`;
    title.innerHTML = `<span></span><a href="${snap}" target="_blank">PNG</a>`;
    // Plots are drawn on a canvas; text logs and properties are lists of lines.
    const canvas = document.createElement(drawn === "canvas" ? "canvas" : "div");
    if (drawn === "list") canvas.className = "lines";
    box.append(title, canvas);
    // In a stable order (the server's), whatever order the fetches complete in.
    const next = [...grid.children].find(other => other.dataset.key > box.dataset.key);
    grid.insertBefore(box, next || null);
    entry = { box, title, canvas, drawn };
    windows.set(key(env, win), entry);
    layout();
  }
  entry.view = view;
  entry.title.querySelector("span").textContent = view.title || win;
  entry.box.dataset.xLabel = view.x_label || "";
  entry.box.dataset.yLabel = view.y_label || "";
  entry.dirty = true;
  document.getElementById("empty").hidden = windows.size > 0;
}

// On a wall screen the windows fill the height: as many rows as the columns leave.
function layout() {
  const columns = getComputedStyle(grid).gridTemplateColumns.split(" ").length || 1;
  grid.style.setProperty("--rows", Math.max(1, Math.ceil(windows.size / columns)));
  windows.forEach(e => e.dirty = true);
}

function removeWindow(env, win) {
  const entry = windows.get(key(env, win));
  if (entry) { entry.box.remove(); windows.delete(key(env, win)); layout(); }
  document.getElementById("empty").hidden = windows.size > 0;
}

async function fetchAll() {
  const list = await (await fetch("/api/windows")).json();
  const present = new Set(list.map(w => key(w.env, w.win)));
  for (const k of [...windows.keys()]) if (!present.has(k)) { const [e, w] = k.split("/"); removeWindow(e, w); }
  await Promise.all(list.map(w => fetchWindow(w.env, w.win)));
}

function applyPoints(event) {
  const entry = windows.get(key(event.env, event.win));
  if (!entry) { fetchWindow(event.env, event.win); return; }
  let series = entry.view.series.find(s => s.name === event.series);
  if (!series) { series = { name: event.series, appended: 0, retained: 0, retention: Infinity, points: [] }; entry.view.series.push(series); }
  for (const p of event.points) series.points.push(p);
  series.retained = Math.min(series.retained + event.points.length, series.retention);
  // Counted for tests and for the curious: points that arrived over the live stream.
  document.body.dataset.livePoints = (Number(document.body.dataset.livePoints) || 0) + event.points.length;
  series.appended += event.points.length;
  const limit = maxPoints() * 2;
  if (series.points.length > limit) series.points.splice(0, series.points.length - limit);
  entry.dirty = true;
}

function applyText(event) {
  const entry = windows.get(key(event.env, event.win));
  if (!entry || !entry.view.text) { fetchWindow(event.env, event.win); return; }
  const text = entry.view.text;
  text.entries.push(event.text);
  text.appended += 1;
  if (text.entries.length > 500) text.entries.splice(0, text.entries.length - 500);
  document.body.dataset.liveTexts = (Number(document.body.dataset.liveTexts) || 0) + 1;
  entry.dirty = true;
}

// Visdom text is HTML: the page shows its words, never its markup or scripts.
function plainText(html) { return html.replace(/<[^>]*>/g, ""); }

function drawLines(entry) {
  const view = entry.view;
  const lines = view.kind === "text"
    ? view.text.entries.map(plainText)
    : (view.properties || []).map(p => `${p.name}: ${typeof p.value === "string" ? p.value : JSON.stringify(p.value)}`);
  const list = entry.canvas;
  list.replaceChildren(...lines.map(line => { const div = document.createElement("div"); div.textContent = line; return div; }));
  list.scrollTop = list.scrollHeight;
}

// About `count` ticks covering [lo, hi] on round values: 1, 2 or 5 times a power of ten, or
// for times (epoch ms) a round clock step. Returns the axis widened to the outer ticks.
const clockSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map(s => s * 1000);
function roundTicks(lo, hi, count, asTime) {
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = (asTime && raw >= 1000 ? clockSteps.find(s => s >= raw) : undefined)
    || [1, 2, 5, 10].map(m => m * power).find(s => s >= raw * (1 - 1e-9));
  const from = Math.floor(lo / step + 1e-9), to = Math.ceil(hi / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks = [];
  for (let i = from; i <= to; i++) ticks.push(Number((i * step).toFixed(decimals)));
  const label = asTime ? (v => new Date(v).toISOString().slice(11, step >= 60000 ? 16 : 19)) : (v => v.toFixed(decimals));
  return { lo: from * step, hi: to * step, ticks, label };
}

const counted = n => n.toLocaleString("en-US");

// A series' legend: its name and how many points it received; when the window shows only the
// latest of them, it says so.
function legend(s) {
  return s.retained < s.appended ? `${s.name} (latest ${counted(s.retained)} of ${counted(s.appended)})` : `${s.name} (${counted(s.appended)})`;
}

function draw(entry) {
  // Points (or entries) the window has received, for tests and the curious.
  entry.box.dataset.received = entry.view.text ? entry.view.text.appended : entry.view.series.reduce((n, s) => n + s.appended, 0);
  if (entry.drawn === "list") { drawLines(entry); return; }
  const canvas = entry.canvas;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const all = entry.view.series.flatMap(s => s.points);
  if (all.length === 0) { ctx.fillStyle = "#999"; ctx.fillText("waiting for data…", 10, 20); return; }
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of all) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const bars = entry.view.kind === "bar";
  let gap = 1;
  if (bars) {
    // Bars stand on zero and are whole at both ends of the axis.
    const xs = [...new Set(all.map(p => p[0]))].sort((a, b) => a - b);
    const gaps = xs.slice(1).map((x, i) => x - xs[i]);
    if (gaps.length) gap = Math.min(...gaps);
    x0 -= gap / 2; x1 += gap / 2; y0 = Math.min(y0, 0); y1 = Math.max(y1, 0);
  }
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  // Epoch milliseconds read as clock times, anything else as numbers.
  const asTime = !bars && x0 > 1e12;
  const yAxis = roundTicks(y0, y1, 4, false);
  [y0, y1] = [yAxis.lo, yAxis.hi];
  const xAxis = bars ? null : roundTicks(x0, x1, 4, asTime);
  if (xAxis && !asTime) [x0, x1] = [xAxis.lo, xAxis.hi];
  entry.box.dataset.yTicks = yAxis.ticks.map(yAxis.label).join(",");
  entry.box.dataset.xTicks = xAxis ? xAxis.ticks.filter(x => x >= x0 && x <= x1).map(xAxis.label).join(",") : "";
  entry.box.dataset.legend = entry.view.series.map(legend).join(" | ");
  const left = 84, right = 10, top = 10, bottom = 38;
  const sx = x => left + (x - x0) / (x1 - x0) * (width - left - right);
  const sy = y => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  ctx.strokeStyle = "#ddd"; ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
  for (const y of yAxis.ticks) {
    ctx.beginPath(); ctx.moveTo(left, sy(y)); ctx.lineTo(width - right, sy(y)); ctx.stroke();
    ctx.fillText(yAxis.label(y), 18, sy(y) + 4);
  }
  drawAxisTitles(ctx, entry.view, asTime, { width, height, left, top, bottom });
  if (xAxis) {
    // Times keep the data's own span (a clock step rarely fits it): ticks inside it only.
    for (const x of xAxis.ticks.filter(x => x >= x0 && x <= x1)) {
      const label = xAxis.label(x);
      const w = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(Math.max(sx(x) - w / 2, left), width - right - w), height - bottom + 14);
    }
  }
  entry.view.series.forEach((s, i) => {
    ctx.strokeStyle = colors[i % colors.length]; ctx.fillStyle = colors[i % colors.length];
    if (bars) {
      const n = entry.view.series.length, width = (sx(gap) - sx(0)) / n;
      for (const [x, y] of s.points) {
        const left = sx(x) + (i - (n - 1) / 2) * width - width * 0.45;
        ctx.fillRect(left, Math.min(sy(0), sy(y)), width * 0.9, Math.abs(sy(y) - sy(0)));
      }
      (entry.view.categories || []).forEach((name, j) => ctx.fillText(name, sx(j + 1) - ctx.measureText(name).width / 2, height - 14));
    } else if (entry.view.kind === "markers") {
      for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(sx(x), sy(y), 3, 0, 2 * Math.PI); ctx.fill(); }
    } else {
      ctx.lineWidth = 1.5; ctx.beginPath();
      s.points.forEach(([x, y], j) => j === 0 ? ctx.moveTo(sx(x), sy(y)) : ctx.lineTo(sx(x), sy(y)));
      ctx.stroke();
    }
    ctx.fillText(legend(s), left + 6 + i * 200, height - 4);
  });
}

// The axes' titles with their units, as the workflow named them: y turned along its axis,
// x at the right end under the ticks (times are UTC).
function drawAxisTitles(ctx, view, asTime, { width, height, top, bottom }) {
  ctx.save();
  ctx.fillStyle = "#333";
  const yTitle = view.y_label || "";
  ctx.translate(11, top + (height - top - bottom) / 2 + ctx.measureText(yTitle).width / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(yTitle, 0, 0);
  ctx.restore();
  const xTitle = asTime ? `${view.x_label || "time"} (UTC)` : view.x_label || "";
  ctx.fillStyle = "#333";
  ctx.fillText(xTitle, width - 10 - ctx.measureText(xTitle).width, height - 4);
}

function frame() {
  for (const entry of windows.values()) if (entry.dirty && entry.view) { entry.dirty = false; draw(entry); }
  requestAnimationFrame(frame);
}

function connect() {
  // EventSource reconnects by itself and sends Last-Event-ID, so the server resumes the
  // stream where it stopped; a `resync` means it could not, and everything is refetched.
  const source = new EventSource("/api/stream");
  source.addEventListener("hello", () => { statusLine.textContent = "live"; fetchAll(); });
  source.addEventListener("resync", () => { statusLine.textContent = "live (resynced)"; fetchAll(); });
  source.addEventListener("batch", message => {
    statusLine.textContent = "live";
    for (const event of JSON.parse(message.data)) {
      if (event.type === "points") applyPoints(event);
      else if (event.type === "text") applyText(event);
      else if (event.closed) removeWindow(event.env, event.win);
      else fetchWindow(event.env, event.win);
    }
  });
  source.onerror = () => { statusLine.textContent = "reconnecting…"; };
}

window.addEventListener("resize", layout);
fetchAll().catch(() => {});
connect();
requestAnimationFrame(frame);
