// Weir's web UI: a small hash-routed page over the REST API, refreshed on the server's
// `changed` events. Mutating calls carry the bearer token (the page's own, or one the user
// pasted, kept in localStorage).
"use strict";

const view = document.getElementById("view");
const dialog = document.getElementById("launch");
const pageToken = document.querySelector('meta[name="weir-page-token"]').content;
const token = () => localStorage.getItem("weir-token") || pageToken;
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (token()) headers.authorization = "Bearer " + token();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data; try { data = JSON.parse(text); } catch { data = text; }
  if (!response.ok) {
    if (response.status === 401 || response.status === 403) {
      const pasted = prompt("This needs an operator token (see WEIR_HOME/tokens.txt):");
      if (pasted) { localStorage.setItem("weir-token", pasted); return api(method, path, body); }
    }
    const problems = data && data.problems ? "\n" + data.problems.join("\n") : "";
    throw new Error((data && data.error ? data.error : text) + problems);
  }
  return data;
}

const stateCell = s => `<span class="state-${esc(s)}">${esc(s)}</span>`;

async function dashboard() {
  const d = await api("GET", "/api/dashboard");
  const counter = (label, value, id) => `<div class="counter" id="${id}"><b>${value}</b>${label}</div>`;
  view.innerHTML = `<div class="counters">
      ${counter("Service instances", d.service_instances, "c-instances")}
      ${counter("Running processes", d.running_processes, "c-running")}
      ${counter("Pending requests", d.pending_requests, "c-pending")}
      ${counter("Services in catalog", d.services_in_catalog, "c-catalog")}
      ${counter("Processes today", d.processes_today, "c-today")}
    </div><h2>Recent runs</h2>${runsTable(d.recent_runs)}`;
}

// Runs with their state; one waiting for a person is highlighted with what it waits for.
function runsTable(runs) {
  if (!runs.length) return "<p>No runs yet: launch a workflow from the catalog.</p>";
  const waiting = r => (r.approvals || []).map(a => `<br><a class="awaiting-link" href="#/runs/${esc(r.id)}">approve or reject <code>${esc(a.task)}</code></a>`).join("");
  return `<table class="runs"><tr><th>Run</th><th>Workflow</th><th>State</th><th>Created</th><th>Finished</th></tr>${runs.map(r =>
    `<tr data-run="${esc(r.id)}" class="${(r.approvals || []).length ? "awaiting" : ""}"><td><a href="#/runs/${esc(r.id)}">${esc(r.id)}</a></td><td>${esc(r.workflow)}</td><td>${stateCell(r.state)}${waiting(r)}</td><td>${esc(r.created)}</td><td>${esc(r.finished || "")}</td></tr>`).join("")}</table>`;
}

let catalogCache;
async function catalog() {
  catalogCache = await api("GET", "/api/catalog");
  const card = (kind, id, name, description) => `<div class="card"><h3>${esc(name)} <span class="tag">${kind}</span></h3>
      <p>${esc(description)}</p><button class="primary" data-launch="${kind}:${esc(id)}">Launch</button></div>`;
  view.innerHTML = `<h2>Workflows</h2><div class="cards">${catalogCache.workflows.map(w => card("workflow", w.id, w.name, w.description)).join("")}</div>
    <h2>Services</h2><div class="cards">${catalogCache.services.map(s => card("service", s.name, s.name, s.description)).join("")}</div>`;
  view.querySelectorAll("[data-launch]").forEach(b => b.onclick = () => openForm(...b.dataset.launch.split(":")));
}

// One input per typed variable or parameter, defaults filled in, checked before submission.
function field(name, spec) {
  const type = spec.type;
  const value = spec.default === undefined || spec.default === null ? "" : spec.default;
  let input;
  if (type === "bool") input = `<select name="${esc(name)}"><option ${value === true || value === "true" ? "selected" : ""}>true</option><option ${value === false || value === "false" ? "selected" : ""}>false</option></select>`;
  else if (type === "enum") input = `<select name="${esc(name)}">${(spec.values || []).map(v => `<option ${v === value ? "selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
  else {
    const attrs = [];
    if (type === "int" || type === "float") { attrs.push(`type="number"`, `step="${type === "int" ? 1 : "any"}"`); }
    if (type === "url") attrs.push(`type="url"`);
    if (spec.min !== undefined && spec.min !== null && type !== "duration") attrs.push(`min="${spec.min}"`);
    if (spec.max !== undefined && spec.max !== null && type !== "duration") attrs.push(`max="${spec.max}"`);
    if (spec.pattern) attrs.push(`pattern="${esc(spec.pattern)}"`);
    if (spec.required) attrs.push("required");
    if (type === "duration") attrs.push(`pattern="([0-9.]+(ms|s|m|h))+|[0-9]+"`, `title="e.g. 30s, 2m, 500ms"`);
    input = `<input name="${esc(name)}" value="${esc(value)}" ${attrs.join(" ")}>`;
  }
  return `<label>${esc(name)} <small>${esc(type)}${spec.description ? " — " + esc(spec.description) : ""}</small></label>${input}`;
}

// Where a launch runs: the backends this server offers (weir serve --backends), its default first.
function whereField() {
  const backends = catalogCache.backends || ["local"];
  return `<label>where <small>local processes, or a namespace of its own in the cluster of weir serve's kubeconfig</small></label>
    <select name="__backend">${backends.map((b, i) => `<option ${i === 0 ? "selected" : ""}>${esc(b)}</option>`).join("")}</select>`;
}

function openForm(kind, id) {
  let fields, title;
  if (kind === "workflow") {
    const w = catalogCache.workflows.find(w => w.id === id);
    title = `Run workflow ${w.name}`;
    fields = Object.entries(w.variables).map(([name, spec]) => field(name, spec)).join("") + whereField();
  } else {
    const s = catalogCache.services.find(s => s.name === id);
    title = `Start ${s.name}`;
    fields = field("name", { type: "string", description: "instance name (optional)", pattern: "[a-z][a-z0-9-]*" }) +
      s.params.map(p => field(p.name, { ...p, default: p.default, values: p.values })).join("") + whereField();
  }
  dialog.innerHTML = `<form method="dialog" id="launch-form"><h3>${esc(title)}</h3>${fields}
    <p class="error" id="form-error"></p><button type="button" id="cancel">Cancel</button> <button class="primary" type="submit">Launch</button></form>`;
  dialog.showModal();
  dialog.querySelector("#cancel").onclick = () => dialog.close();
  dialog.querySelector("form").onsubmit = async event => {
    event.preventDefault();
    const form = event.target;
    if (!form.reportValidity()) return;
    const values = Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ""));
    try {
      if (kind === "workflow") {
        const backend = values.__backend; delete values.__backend;
        const { id: runId } = await api("POST", "/api/runs", { workflow: id, variables: values, backend });
        dialog.close(); location.hash = `#/runs/${runId}`;
      } else {
        const name = values.name; delete values.name;
        const backend = values.__backend; delete values.__backend;
        await api("POST", "/api/instances", { service: id, name, params: values, backend });
        dialog.close(); location.hash = "#/instances";
      }
    } catch (error) { document.getElementById("form-error").textContent = error.message; }
  };
}

async function instances() {
  const rows = await api("GET", "/api/instances");
  // Logs and Stop act on this machine's processes; cluster instances go with their run
  // (or `weir down --backend kubernetes`).
  const local = i => i.backend === "local";
  view.innerHTML = rows.length ? `<table><tr><th>Name</th><th>Service</th><th>State</th><th>Backend</th><th>Endpoint</th><th>Started</th><th>Run</th><th></th></tr>${rows.map(i => `<tr data-backend="${esc(i.backend)}">
      <td>${esc(i.name)}</td><td>${esc(i.service)}</td><td>${stateCell(i.state)}</td>
      <td>${esc(i.namespace ? `${i.backend}/${i.namespace}` : i.backend)}</td>
      <td>${i.endpoint.startsWith("http") ? `<a href="${esc(i.endpoint)}" target="_blank">${esc(i.endpoint)}</a>` : esc(i.endpoint || "-")}</td>
      <td>${esc(i.started)}</td><td>${i.run ? `<a href="#/runs/${esc(i.run)}">${esc(i.run)}</a>` : ""}</td>
      <td>${local(i) && i.service === "kafka" ? `<a href="#/instances/${esc(encodeURIComponent(i.name))}/topics">Topics</a> ` : ""}${local(i) ? `<button data-log="${esc(i.name)}">Logs</button> <button class="danger" data-stop="${esc(i.name)}">Stop</button>` : ""}</td></tr>`).join("")}</table>`
    : "<p>No service instances. Start one from the catalog.</p>";
  view.querySelectorAll("[data-stop]").forEach(b => b.onclick = async () => { await api("DELETE", `/api/instances/${b.dataset.stop}`); });
  view.querySelectorAll("[data-log]").forEach(b => b.onclick = async () => {
    const text = await (await fetch(`/api/instances/${b.dataset.log}/log`, { headers: token() ? { authorization: "Bearer " + token() } : {} })).text();
    dialog.innerHTML = `<h3>${esc(b.dataset.log)}</h3><pre>${esc(text)}</pre><button onclick="this.closest('dialog').close()">Close</button>`;
    dialog.showModal();
  });
}

async function runs() { view.innerHTML = `<h2>Runs</h2>${runsTable(await api("GET", "/api/runs"))}`; }

// The chart server of a run that is still up, as the live page's URL; none once it is gone.
async function liveChartsOf(id) {
  const instances = await api("GET", "/api/instances");
  const charts = instances.find(i => i.run === id && i.service === "chart-server" && i.state === "running" && i.endpoint.startsWith("http"));
  return charts ? `${charts.endpoint.replace(/\/$/, "")}/?kiosk=1` : null;
}

// Shows the live charts under the page, loading them only when their address changes.
function showLiveCharts(url) {
  const section = document.getElementById("live-charts");
  const frame = section.querySelector("iframe");
  section.hidden = !url;
  if (url && frame.getAttribute("src") !== url) frame.setAttribute("src", url);
  if (!url && frame.hasAttribute("src")) frame.removeAttribute("src");
}

// A wall screen for a run: its name and state over its live charts, nothing to click.
async function screen(id) {
  const r = await api("GET", `/api/runs/${id}`);
  const live = await liveChartsOf(id);
  document.getElementById("screen-title").textContent = `${r.workflow} · run ${r.id}`;
  document.getElementById("screen-state").innerHTML = stateCell(r.state);
  document.getElementById("screen-note").textContent = live ? "live" : "the run's charts are no longer served; its page keeps their snapshots";
  showLiveCharts(live);
}

// The task graph of a run, drawn left to right: a task stands one column right of the latest
// task it depends on. Each box shows the task's state, how long it took (or has taken so far)
// and its attempts; a task waiting for approval is outlined. A click shows its log below.
const secondsBetween = (from, to) => (Date.parse(to) - Date.parse(from)) / 1000;
function taskDuration(t) {
  if (!t.started) return "";
  const seconds = secondsBetween(t.started, t.finished || new Date().toISOString());
  if (!(seconds >= 0)) return "";
  return seconds < 60 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}
function taskGraph(tasks, waiting) {
  const byName = new Map(tasks.map(t => [t.name, t]));
  const column = new Map();
  const columnOf = t => {
    if (!column.has(t.name)) {
      column.set(t.name, 0);
      column.set(t.name, Math.max(0, ...t.depends.filter(d => byName.has(d)).map(d => columnOf(byName.get(d)) + 1)));
    }
    return column.get(t.name);
  };
  tasks.forEach(columnOf);
  const [W, H, GX, GY] = [176, 50, 56, 14];
  const rows = new Map();
  const place = new Map(tasks.map(t => { const c = column.get(t.name); const r = rows.get(c) || 0; rows.set(c, r + 1); return [t.name, { x: 8 + c * (W + GX), y: 8 + r * (H + GY) }]; }));
  const width = 16 + Math.max(...[...column.values()].map(c => c + 1)) * (W + GX) - GX;
  const height = 16 + Math.max(...rows.values()) * (H + GY) - GY;
  const edges = tasks.flatMap(t => t.depends.filter(d => place.has(d)).map(d => {
    const [a, b] = [place.get(d), place.get(t.name)];
    const [x1, y1, x2, y2] = [a.x + W, a.y + H / 2, b.x, b.y + H / 2];
    return `<path class="edge" d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}"/>`;
  }));
  const nodes = tasks.map(t => {
    const p = place.get(t.name);
    const awaiting = waiting.includes(t.name);
    const facts = [awaiting ? "awaiting approval" : t.state, taskDuration(t), t.attempts > 1 ? `${t.attempts} attempts` : ""].filter(Boolean).join(" · ");
    return `<g class="task node-${esc(t.state)}${awaiting ? " awaiting" : ""}" data-task="${esc(t.name)}" data-state="${esc(awaiting ? "awaiting-approval" : t.state)}" transform="translate(${p.x},${p.y})" tabindex="0">
      <title>${esc(t.name)} (${esc(t.kind)})${t.error ? ": " + esc(t.error) : ""}</title>
      <rect width="${W}" height="${H}" rx="6"/><text x="10" y="20" class="name">${esc(t.name.length > 22 ? t.name.slice(0, 21) + "…" : t.name)}</text><text x="10" y="38" class="facts">${esc(facts)}</text></g>`;
  });
  return `<svg id="task-graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="task graph">${edges.join("")}${nodes.join("")}</svg>`;
}

// The task whose log is open on a run's page, kept while the page redraws.
const openLogs = new Map();

// A task's log: its instance's, live while the instance runs, then as the run kept it.
async function showTaskLog(r, name) {
  const box = document.getElementById("task-log");
  const task = r.tasks.find(t => t.name === name);
  if (!box || !task) return;
  openLogs.set(r.id, name);
  document.querySelectorAll("#task-graph .task").forEach(g => g.classList.toggle("selected", g.dataset.task === name));
  if (!task.instance) {
    box.innerHTML = `<h3>Task ${esc(name)}</h3><p>This task starts no service, so it has no log: it ${esc(task.state)}${task.error ? `: <span class="error">${esc(task.error)}</span>` : "."}</p>`;
    return;
  }
  const instances = await api("GET", "/api/instances");
  const live = instances.some(i => i.name === task.instance && i.run === r.id && i.state === "running");
  let text, from;
  try {
    if (live) { text = await api("GET", `/api/instances/${encodeURIComponent(task.instance)}/log?tail=400`); from = "live, its last 400 lines"; }
    else { text = await api("GET", `/api/runs/${encodeURIComponent(r.id)}/artifacts/logs/${encodeURIComponent(task.instance)}.log`); from = "as kept with the run's artifacts"; }
  } catch (e) { text = null; from = e.message; }
  if (openLogs.get(r.id) !== name) return;
  box.innerHTML = `<h3>Log of ${esc(name)} <small>(instance <code>${esc(task.instance)}</code>, <span id="task-log-source">${esc(text == null ? "unavailable: " + from : from)}</span>)</small></h3>
    ${text == null ? "" : `<pre id="task-log-text">${esc(String(text).split("\n").slice(-400).join("\n"))}</pre>`}`;
  const pre = document.getElementById("task-log-text");
  if (pre) pre.scrollTop = pre.scrollHeight;
}

// The monitoring panel of a run's topologies, read from their runners every two seconds while
// the run is not over. Rates come from two reads of the counters; a figure no runner gave (a
// runner that did not answer, a lag not known yet, no record finished) says "unavailable" and
// why, never 0.
const MONITOR_EVERY_MS = 2000;
const monitor = { run: null, timer: null, previous: new Map(), html: null };
const unavailable = why => `<span class="unavailable" title="${esc(why)}">unavailable</span>`;
const figure = (value, digits = 0) => value.toLocaleString("en-US", { maximumFractionDigits: digits });
// A counter's change per second between two reads ({ value, text }); "measuring…" until a
// second read, unavailable when the counter went back (its process restarted).
function perSecond(now, nowAt, before, beforeAt) {
  if (before == null) return { text: `<span class="measuring">measuring…</span>` };
  const seconds = (nowAt - beforeAt) / 1000, delta = now - before;
  if (!(seconds > 0) || delta < 0) return { text: unavailable("the counter went back between two reads (its process restarted); the next read will tell") };
  const value = delta / seconds;
  return { value, text: figure(value, value < 10 ? 1 : 0) };
}
const rate = (now, before, field) => perSecond(now.status[field], now.read_at_unix_ms, before && before.status[field], before && before.read_at_unix_ms);
function monitorRow(t) {
  const cells = [`<td><b>${esc(t.task)}</b><br><small><code>${esc(t.instance)}</code>${t.replicas > 1 ? ` · ${t.replicas} replicas` : ""}</small></td>`];
  if (!t.status) {
    return `<tr data-topology="${esc(t.task)}" data-state="unavailable">${cells[0]}<td colspan="7">${unavailable(t.unavailable)} <small>${esc(t.unavailable)}</small></td></tr>`;
  }
  const s = t.status;
  const before = monitor.previous.get(t.instance);
  const recordsIn = rate(t, before, "consumed"), messagesOut = rate(t, before, "messages_out");
  const lag = s.lag == null ? unavailable("not known yet: the runner has no partition assigned, or has not learnt a partition's end") : figure(s.lag);
  const latency = q => s.latency ? `${figure(s.latency[q], 1)} ms` : unavailable("no record has finished yet");
  const errors = `${figure(s.failed_records)} failed${s.late_records ? ` · ${figure(s.late_records)} late` : ""}${s.last_error ? `<br><small class="error">${esc(s.last_error)}</small>` : ""}`;
  cells.push(`<td>${stateCell(s.state)}</td>`, `<td class="in-rate">${recordsIn.text}</td>`, `<td class="out-rate">${messagesOut.text}</td>`,
    `<td class="lag">${lag}</td>`, `<td class="p50">${latency("p50_ms")}</td>`, `<td class="p99">${latency("p99_ms")}</td>`, `<td class="errors">${errors}</td>`);
  return `<tr data-topology="${esc(t.task)}" data-state="${esc(s.state)}" data-consumed="${s.consumed}" data-in-rate="${recordsIn.value ?? ""}" data-out-rate="${messagesOut.value ?? ""}"
    data-lag="${s.lag ?? ""}" data-p99="${s.latency ? s.latency.p99_ms : ""}" data-samples="${s.latency ? s.latency.samples : ""}">${cells.join("")}</tr>`
    // A topology of one step (a chain of operators) has nothing more to say per step.
    + ((s.steps || []).length > 1 ? s.steps.map(step => stepRow(t, step, before)).join("") : "");
}
// One step of a topology: the records its first operator took and its last passed on, per
// second (filtered, refused and retried records are not passed on).
function stepRow(t, step, before) {
  const earlier = before && (before.status.steps || []).find(b => b.name === step.name);
  const per = field => perSecond(step[field], t.read_at_unix_ms, earlier && earlier[field], before && before.read_at_unix_ms);
  const recordsIn = per("records_in"), recordsOut = per("records_out");
  return `<tr class="step" data-step-of="${esc(t.task)}" data-step="${esc(step.name)}" data-records-in="${step.records_in}" data-records-out="${step.records_out}"
    data-in-rate="${recordsIn.value ?? ""}" data-out-rate="${recordsOut.value ?? ""}"><td>&nbsp;&nbsp;↳ step <code>${esc(step.name)}</code></td><td></td>
    <td class="in-rate">${recordsIn.text}</td><td class="out-rate">${recordsOut.text} <small>passed on</small></td><td colspan="4"><small>${figure(step.records_in)} in · ${figure(step.records_out)} passed on</small></td></tr>`;
}
function monitorPanel(readings, error) {
  if (readings && !readings.length) return "";
  return `<h3>Topologies <small>live from their runners, every ${MONITOR_EVERY_MS / 1000} s; latency from each input message's timestamp to its outputs' acknowledgement</small></h3>
    ${error ? `<p class="error">The runners could not be read: ${esc(error)}</p>` : `<table id="monitor-table"><tr><th>Topology</th><th>State</th><th>Records in /s</th><th>Messages out /s</th><th>Lag (records)</th><th>Latency p50</th><th>p99</th><th>Errors</th></tr>
    ${readings.map(monitorRow).join("")}</table>`}`;
}
// Draws the latest panel again (the run's page is redrawn on every change).
function drawMonitor() {
  const box = document.getElementById("monitor");
  if (box && monitor.html != null) box.innerHTML = monitor.html;
}
async function pollMonitor(id) {
  if (monitor.run !== id) return;
  let readings = null, error = null;
  try { readings = await api("GET", `/api/runs/${encodeURIComponent(id)}/topologies`); } catch (e) { error = e.message; }
  if (monitor.run !== id) return;
  monitor.html = monitorPanel(readings, error);
  drawMonitor();
  for (const t of readings || []) { if (t.status) monitor.previous.set(t.instance, t); else monitor.previous.delete(t.instance); }
  monitor.timer = setTimeout(() => pollMonitor(id), MONITOR_EVERY_MS);
}
// Starts the panel's reads for a run still going, or stops them.
function watchTopologies(id, over) {
  if (monitor.run === id && !over) { drawMonitor(); return; }
  clearTimeout(monitor.timer);
  Object.assign(monitor, { run: null, timer: null, previous: new Map(), html: null });
  if (id && !over) { monitor.run = id; pollMonitor(id); }
}

async function run(id) {
  const r = await api("GET", `/api/runs/${id}`);
  const live = await liveChartsOf(id);
  const topics = Object.entries(r.topics || {});
  const missing = Object.entries(r.unavailable || {});
  view.innerHTML = `<h2>Run ${esc(r.id)} — ${esc(r.workflow)} ${stateCell(r.state)}</h2>
    ${r.error ? `<p class="error">${esc(r.error)}</p>` : ""}
    ${(r.approvals || []).map(a => `<div class="approval" data-task="${esc(a.task)}"><b>Approval needed</b> (task <code>${esc(a.task)}</code>): ${esc(a.message)}<br><br>
      <button class="primary approve">Approve</button> <button class="danger reject">Reject</button></div>`).join("")}
    <h3>Tasks <small>click one for its log</small></h3>
    <div class="graph">${taskGraph(r.tasks, (r.approvals || []).map(a => a.task))}</div>
    <section id="task-log"></section>
    <section id="monitor"></section>
    <table id="tasks"><tr><th>Task</th><th>Kind</th><th>Depends on</th><th>State</th><th>Started</th><th>Finished</th><th>Attempts</th><th>Error</th></tr>
    ${r.tasks.map(t => `<tr data-task="${esc(t.name)}"><td>${esc(t.name)}</td><td>${esc(t.kind)}</td><td>${esc(t.depends.join(", "))}</td><td>${stateCell(t.state)}</td>
      <td>${esc(t.started || "")}</td><td>${esc(t.finished || "")}</td><td>${t.attempts}</td><td class="error">${esc(t.error || "")}</td></tr>`).join("")}</table>
    ${topics.length ? `<h3>Topics</h3><table>${topics.map(([t, n]) => `<tr><td>${esc(t)}</td><td>${n}</td></tr>`).join("")}</table>` : ""}
    ${missing.length ? `<h3>Unavailable results</h3><ul>${missing.map(([k, v]) => `<li>${esc(k)}: ${esc(v)}</li>`).join("")}</ul>` : ""}
    ${(r.charts || []).length ? `<h3>Charts</h3><div class="cards">${r.charts.map(c =>
      `<a href="/api/runs/${esc(r.id)}/artifacts/${esc(c)}" target="_blank"><img src="/api/runs/${esc(r.id)}/artifacts/${esc(c)}" style="width:100%" alt="${esc(c)}"></a>`).join("")}</div>` : ""}
    <p>Artifacts: <code>${esc(r.artifacts)}</code></p>
    ${live ? `<h3>Live charts <small><a href="#/runs/${esc(r.id)}/screen">wall screen</a> · <a href="${esc(live)}" target="_blank">open</a></small></h3>` : ""}`;
  showLiveCharts(live);
  watchTopologies(id, ["succeeded", "failed", "cancelled"].includes(r.state));
  const answer = (verb, task) => async () => {
    try { await api("POST", `/api/runs/${id}/${verb}?task=${encodeURIComponent(task)}`); } catch (e) { alert(e.message); }
  };
  document.querySelectorAll(".approval").forEach(box => {
    box.querySelector(".approve").onclick = answer("approve", box.dataset.task);
    box.querySelector(".reject").onclick = answer("reject", box.dataset.task);
  });
  document.querySelectorAll("#task-graph .task").forEach(g => {
    g.onclick = () => showTaskLog(r, g.dataset.task);
    g.onkeydown = event => { if (event.key === "Enter") showTaskLog(r, g.dataset.task); };
  });
  if (openLogs.has(r.id)) showTaskLog(r, openLogs.get(r.id));
}

// The topics of a Kafka instance: partitions, messages, consumer groups and their lag.
// Read again every two seconds while the page is open, for messages written per second.
const TOPICS_EVERY_MS = 2000;
let topicsWatch = null;
function stopTopicsWatch() { if (topicsWatch) { clearTimeout(topicsWatch.timer); topicsWatch = null; } }
async function topicsOf(name) {
  stopTopicsWatch();
  const watch = topicsWatch = { name, previous: null, timer: null };
  const o = await api("GET", `/api/instances/${encodeURIComponent(name)}/topics`);
  if (topicsWatch !== watch) return;
  view.innerHTML = `<h2>Topics of ${esc(name)} <small>read every ${TOPICS_EVERY_MS / 1000} s</small></h2><div id="topics-overview"></div>`;
  drawTopics(name, o, null);
  watch.previous = o;
  const again = async () => {
    let now, error = null;
    try { now = await api("GET", `/api/instances/${encodeURIComponent(name)}/topics`); } catch (e) { error = e.message; }
    if (topicsWatch !== watch) return;
    if (error) { document.getElementById("topics-read-error").textContent = `The last read failed (${error}); figures are from the read before.`; }
    else { drawTopics(name, now, watch.previous); watch.previous = now; }
    watch.timer = setTimeout(again, TOPICS_EVERY_MS);
  };
  watch.timer = setTimeout(again, TOPICS_EVERY_MS);
}
function drawTopics(name, o, before) {
  const lagTime = g => g.lag === 0 ? "-" : g.lag_seconds == null ? "unknown" : `${g.lag_seconds.toFixed(1)} s`;
  const link = t => `#/instances/${encodeURIComponent(name)}/topics/${encodeURIComponent(t)}`;
  const written = t => t ? t.partitions.reduce((sum, p) => sum + p.end, 0) : null;
  const writeRate = t => perSecond(written(t), o.offsets_read_at_unix_ms, before && written(before.topics.find(b => b.name === t.name)), before && before.offsets_read_at_unix_ms);
  document.getElementById("topics-overview").innerHTML = `<p class="error" id="topics-read-error"></p>
    <table id="topics"><tr><th>Topic</th><th>Partitions</th><th>Replicas</th><th>Messages</th><th>Written /s</th></tr>${o.topics.map(t => {
      const r = writeRate(t);
      return `<tr data-topic="${esc(t.name)}" data-rate="${r.value ?? ""}"><td><a href="${esc(link(t.name))}">${esc(t.name)}</a></td><td>${t.partitions.length}</td><td>${t.replication}</td><td>${t.messages}</td><td class="rate">${r.text}</td></tr>`;
    }).join("")}</table>
    <h3>Consumer groups</h3>
    ${o.groups.length ? `<table id="groups"><tr><th>Group</th><th>State</th><th>Members</th><th>Lag (records)</th><th>Lag (time)</th></tr>${o.groups.map(g =>
      `<tr><td>${esc(g.group)}</td><td>${esc(g.state)}</td><td>${g.members}</td><td>${g.lag}</td><td>${lagTime(g)}</td></tr>`).join("")}</table>` : "<p>No consumer groups.</p>"}`;
}

// A message's bytes as shown: JSON pretty-printed, text as is, binary as hex — always escaped.
const shown = c => !c ? "<i>none</i>" : c.format === "json" ? `<pre>${esc(JSON.stringify(c.data, null, 2))}</pre>`
  : `<code>${esc(c.data)}</code>${c.format === "hex" ? " <small>(hex)</small>" : ""}`;
const messageRow = m => `<tr class="message"><td>${m.partition}</td><td>${m.offset}</td><td>${esc(m.timestamp == null ? "-" : new Date(m.timestamp).toISOString())}</td>
  <td>${m.key ? esc(m.key.data) : "-"}</td><td>${(m.headers || []).map(h => `${esc(h.key)}=${h.value ? esc(h.value.data) : ""}`).join("<br>")}</td><td>${m.value ? shown(m.value) : "<i>tombstone</i>"}</td></tr>`;

// The live tail open on the page, closed when the page changes.
let liveTail = null;
function stopTail() { if (liveTail) { liveTail.close(); liveTail = null; } }

// A topic's messages. Every filter lives in the address, so a link reproduces the view.
async function topicMessages(name, topic, params) {
  const base = `/api/instances/${encodeURIComponent(name)}/topics/${encodeURIComponent(topic)}`;
  const query = params.toString();
  const b = await api("GET", `${base}/messages${query ? "?" + query : ""}`);
  const input = (key, label, hint) => `<label>${label}<input name="${key}" value="${esc(params.get(key) || "")}" placeholder="${esc(hint)}"></label>`;
  const download = new URLSearchParams(params); download.set("format", "jsonl");
  if (token()) download.set("access_token", token());
  view.innerHTML = `<h2><a href="#/instances/${esc(encodeURIComponent(name))}/topics">${esc(name)}</a> / ${esc(topic)}</h2>
    <form id="browse-form" class="filters">${input("key", "Key", "exact key")}${input("contains", "Contains", "text")}${input("where", "Where", "CEL, e.g. rate > 7000.0")}
      ${input("offset", "From offset", "newest")}${input("since", "Since", "2026-12-06T09:00:00Z")}${input("partition", "Partition", "all")}${input("limit", "Show", "50")}
      <button class="primary">Browse</button></form>
    <p id="scan-summary">${b.messages.length} shown · scanned ${b.scanned} of at most ${b.scan_limit}${b.scan_limit_reached ? " · <b>scan limit reached</b>: messages outside the range were not searched" : ""}${b.filter_errors ? ` · ${b.filter_errors} could not be tested by the filter` : ""}${b.timed_out ? " · <b>timed out</b>" : ""}</p>
    <p><label><input type="checkbox" id="live-tail"> Live tail</label> <span id="tail-state"></span> · <a id="download" href="${esc(`${base}/messages?${download}`)}">Download as JSON lines</a></p>
    <table id="messages"><tr><th>Partition</th><th>Offset</th><th>Time</th><th>Key</th><th>Headers</th><th>Value</th></tr>${b.messages.map(messageRow).join("")}</table>`;
  document.getElementById("browse-form").onsubmit = event => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [key, value] of new FormData(event.target)) if (value) chosen.set(key, value);
    location.hash = `#/instances/${encodeURIComponent(name)}/topics/${encodeURIComponent(topic)}${chosen.toString() ? "?" + chosen : ""}`;
  };
  document.getElementById("live-tail").onchange = event => {
    stopTail();
    const state = document.getElementById("tail-state");
    if (!event.target.checked) { state.textContent = ""; return; }
    const follow = new URLSearchParams();
    for (const key of ["key", "contains", "where", "partition"]) if (params.get(key)) follow.set(key, params.get(key));
    if (token()) follow.set("access_token", token());
    liveTail = new EventSource(`${base}/tail?${follow}`);
    liveTail.onopen = () => { state.textContent = "following new messages"; document.body.dataset.tailing = "1"; };
    liveTail.addEventListener("message", e => {
      const table = document.getElementById("messages");
      table.rows[0].insertAdjacentHTML("afterend", messageRow(JSON.parse(e.data)));
      document.body.dataset.lastTailAt = Date.now();
    });
    liveTail.addEventListener("failed", e => { state.textContent = `stopped: ${e.data}`; stopTail(); });
    liveTail.onerror = () => { state.textContent = "reconnecting…"; };
  };
}

async function render() {
  const hash = location.hash || "#/";
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", hash === a.getAttribute("href") || (a.getAttribute("href") !== "#/" && hash.startsWith(a.getAttribute("href")))));
  const screenMatch = hash.match(/^#\/runs\/([^/]+)\/screen$/);
  const runMatch = hash.match(/^#\/runs\/([^/]+)$/);
  const topicsMatch = hash.match(/^#\/instances\/([^/]+)\/topics$/);
  const messagesMatch = hash.match(/^#\/instances\/([^/]+)\/topics\/([^/?]+)(?:\?(.*))?$/);
  stopTail();
  stopTopicsWatch();
  document.body.classList.toggle("screen", !!screenMatch);
  if (!screenMatch && !runMatch) showLiveCharts(null);
  if (!runMatch) watchTopologies(null, true);
  try {
    if (screenMatch) await screen(screenMatch[1]);
    else if (runMatch) await run(runMatch[1]);
    else if (topicsMatch) await topicsOf(decodeURIComponent(topicsMatch[1]));
    else if (messagesMatch) await topicMessages(decodeURIComponent(messagesMatch[1]), decodeURIComponent(messagesMatch[2]), new URLSearchParams(messagesMatch[3] || ""));
    else if (hash === "#/catalog") { if (!dialog.open) await catalog(); }
    else if (hash === "#/instances") await instances();
    else if (hash === "#/runs") await runs();
    else await dashboard();
  } catch (error) { view.innerHTML = `<p class="error">${esc(error.message)}</p>`; }
}

window.addEventListener("hashchange", render);
const events = new EventSource("/api/events" + (localStorage.getItem("weir-token") ? "?access_token=" + encodeURIComponent(localStorage.getItem("weir-token")) : ""));
// A topic's view is not redrawn by changes elsewhere: it would lose its live tail.
const ownRefresh = () => /^#\/instances\/[^/]+\/topics/.test(location.hash);
events.addEventListener("changed", () => { document.getElementById("live").textContent = "live"; if (!dialog.open && !ownRefresh()) render(); });
events.onerror = () => { document.getElementById("live").textContent = "reconnecting…"; };
render();
