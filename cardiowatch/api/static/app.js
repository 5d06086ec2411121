// Cardiowatch live page: vanilla JS, no build step. Data comes only from the API with the
// token kept in sessionStorage (bearer header for fetch, access_token for SSE and WebSocket).
"use strict";

const TOKEN_KEY = "cardiowatch.token";
const MAX_ALERTS = 50;
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  patients: new Map(),      // patient id -> vitals (or null)
  priorities: new Map(),    // "patient|alarm type" -> priority of the latest event
  alerts: [],               // newest first: {event_id, alert, ack}
  source: null,
  socket: null,
  current: null,            // patient shown in the patient view
  strip: { fs: 125, samples: [], lastIndex: null },
};

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
};

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    setStatus("token rejected", "error");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

// ---- patients grid -------------------------------------------------------------------------

function activeAlarms(pid, vitals) {
  return (vitals && vitals.active_alarms ? vitals.active_alarms : []).map((type) => ({
    type, priority: state.priorities.get(pid + "|" + type) || "medium",
  }));
}

function renderGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  for (const [pid, vitals] of [...state.patients.entries()].sort()) {
    const card = el("div", "patient");
    card.dataset.patientId = pid;
    card.append(el("div", "id", pid));
    const hr = vitals && vitals.heart_rate_bpm !== null ? Math.round(vitals.heart_rate_bpm) : "--";
    card.append(el("div", "hr", hr + " bpm"));
    const ok = vitals ? vitals.signal_ok : null;
    card.append(el("div", "signal" + (ok === false ? " lost" : ""),
      ok === null ? "no data" : ok ? "signal ok" : "signal lost"));
    const alarms = el("div", "alarms");
    for (const a of activeAlarms(pid, vitals)) alarms.append(el("span", "chip priority-" + a.priority, a.type));
    card.append(alarms);
    card.addEventListener("click", () => showPatient(pid));
    grid.append(card);
  }
  if (state.current) renderPatientVitals();
}

async function loadPatients() {
  const page = await api("/api/v1/patients");
  state.patients = new Map(page.patients.map((p) => [p.patient_id, p.vitals]));
  renderGrid();
}

// ---- alerts ----------------------------------------------------------------------------------

function drawStrip(canvas, strip, onsetSample) {
  const ctx = canvas.getContext("2d");
  const mv = strip && strip.mv ? strip.mv : [];
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (mv.length < 2) return;
  const lo = Math.min(...mv), hi = Math.max(...mv), span = (hi - lo) || 1;
  ctx.strokeStyle = "#6fd08c";
  ctx.beginPath();
  mv.forEach((v, i) => {
    const x = (i / (mv.length - 1)) * canvas.width;
    const y = canvas.height - 4 - ((v - lo) / span) * (canvas.height - 8);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  const at = onsetSample - strip.start_sample;
  if (at >= 0 && at < mv.length) {  // the onset, as a red line
    ctx.strokeStyle = "#ff4d4d";
    const x = (at / (mv.length - 1)) * canvas.width;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height); ctx.stroke();
  }
}

function alertItem(ev) {
  const a = ev.alert;
  const li = el("li", "alert priority-" + a.priority);
  li.dataset.alertId = a.id;
  li.dataset.eventId = ev.event_id;
  const when = new Date(a.time_unix_s * 1000).toLocaleTimeString();
  const hr = a.heart_rate_bpm === null ? "" : " at " + Math.round(a.heart_rate_bpm) + " bpm";
  li.append(el("strong", null, a.alarm_type + " " + a.state), el("span", null,
    " - " + a.patient_id + ", " + a.priority + " priority" + hr + ", " + when));
  if (ev.ack) {
    li.append(el("span", "acked", "acknowledged by " + ev.ack.by));
  } else {
    const button = el("button", "ack", "Acknowledge");
    button.type = "button";
    button.addEventListener("click", async (e) => {
      e.stopPropagation();
      try {
        ev.ack = await api("/api/v1/alerts/" + ev.event_id + "/ack", { method: "POST" });
        button.replaceWith(el("span", "acked", "acknowledged by " + ev.ack.by));
      } catch (err) { button.textContent = "cannot acknowledge"; }
    });
    li.append(" ", button);
  }
  const strip = a.evidence && a.evidence.strip;
  if (strip && strip.mv && strip.mv.length) {
    const canvas = el("canvas");
    canvas.width = 480; canvas.height = 80;
    drawStrip(canvas, strip, a.onset_sample);
    li.append(canvas);
  }
  return li;
}

function remember(ev) {
  state.priorities.set(ev.alert.patient_id + "|" + ev.alert.alarm_type, ev.alert.priority);
}

function renderAlerts() {
  $("alerts").replaceChildren(...state.alerts.slice(0, MAX_ALERTS).map(alertItem));
}

async function loadAlerts() {
  const page = await api("/api/v1/alerts?limit=" + MAX_ALERTS);
  state.alerts = page.items;
  [...page.items].reverse().forEach(remember);
  renderAlerts();
}

function followAlerts() {
  if (state.source) state.source.close();
  const source = new EventSource("/api/v1/alerts/stream?access_token=" + encodeURIComponent(state.token));
  source.addEventListener("open", () => setStatus("live", "ok"));
  source.addEventListener("error", () => setStatus("reconnecting...", "error"));
  source.addEventListener("alert", (message) => {
    const ev = JSON.parse(message.data);
    remember(ev);
    state.alerts.unshift(ev);
    state.alerts.length = Math.min(state.alerts.length, MAX_ALERTS);
    renderAlerts();
    renderGrid();
    if (state.current === ev.alert.patient_id) $("patient-alerts").prepend(alertItem(ev));
  });
  state.source = source;
}

// ---- live vitals and waveform (WebSocket) ---------------------------------------------------

function connectSocket() {
  if (state.socket) state.socket.close();
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/api/v1/live?access_token=" + encodeURIComponent(state.token));
  socket.addEventListener("open", () => {
    if (state.current) socket.send(JSON.stringify({ watch: [state.current] }));
  });
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "vitals") {
      state.patients = new Map(frame.patients.map((p) => [p.patient_id, p.vitals]));
      renderGrid();
    } else if (frame.type === "waveform" && frame.patient_id === state.current) {
      pushWaveform(frame);
    }
  });
  socket.addEventListener("close", () => { if (state.socket === socket) setTimeout(connectSocket, 2000); });
  state.socket = socket;
}

function pushWaveform(frame) {
  const strip = state.strip;
  if (strip.lastIndex !== null && frame.start_sample < strip.lastIndex) return;  // old frame
  strip.fs = frame.fs_hz;
  strip.samples.push(...frame.mv);
  strip.lastIndex = frame.start_sample + frame.mv.length * frame.step;
  const keep = Math.round(strip.fs * 8);  // 8 s on screen
  if (strip.samples.length > keep) strip.samples.splice(0, strip.samples.length - keep);
}

function drawEcg() {
  const canvas = $("ecg");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const s = state.strip.samples;
  if (state.current && s.length > 1) {
    const perPx = canvas.width / Math.round(state.strip.fs * 8);
    ctx.strokeStyle = "#6fd08c";
    ctx.beginPath();
    s.forEach((v, i) => {
      const x = i * perPx;
      const y = canvas.height / 2 - v * (canvas.height / 4);  // 1 mV = a quarter of the height
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  requestAnimationFrame(drawEcg);
}

// ---- patient view ----------------------------------------------------------------------------

function renderPatientVitals() {
  const v = state.patients.get(state.current);
  const text = v ? (v.heart_rate_bpm === null ? "--" : Math.round(v.heart_rate_bpm)) + " bpm, " +
    (v.signal_ok ? "signal ok" : "signal lost") : "no vitals yet";
  $("patient-vitals").textContent = text;
}

async function showPatient(pid) {
  state.current = pid;
  state.strip = { fs: 125, samples: [], lastIndex: null };
  $("overview").hidden = true;
  $("patient").hidden = false;
  $("patient-title").textContent = pid;
  renderPatientVitals();
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ watch: [pid] }));
  }
  const page = await api("/api/v1/alerts?limit=100&patient_id=" + encodeURIComponent(pid));
  $("patient-alerts").replaceChildren(...page.items.map(alertItem));
}

function showOverview() {
  state.current = null;
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ watch: [] }));
  $("patient").hidden = true;
  $("overview").hidden = false;
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  if (!state.token) { setStatus("enter a token"); return; }
  setStatus("connecting...");
  try {
    await Promise.all([loadPatients(), loadAlerts()]);
    renderGrid();
    followAlerts();
    connectSocket();
  } catch (err) {
    if (err.message !== "unauthorized") setStatus(err.message, "error");
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});
$("back").addEventListener("click", showOverview);
requestAnimationFrame(drawEcg);
start();
