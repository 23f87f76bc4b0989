// curator dashboard: job list with live progress; for the selected job its error line, cancel and retry,
// a per-stage funnel (docs kept and dropped, throughput) with the run's ETA, a training's loss curve
// (train and eval) with tokens/s and ETA, and the tail of its log. Charts are inline SVG.
// The page holds no data itself; every call sends the bearer token the user entered (kept in
// sessionStorage; "#token=..." in the URL is moved there and removed from the address bar).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { selected: null, timer: null };

function token() { return sessionStorage.getItem("curator-token") || ""; }

function takeTokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("curator-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const res = await fetch(path, Object.assign({}, options, { headers }));
  const conn = document.getElementById("conn");
  if (res.status === 401) { conn.textContent = "enter a valid token"; throw new Error("unauthorized"); }
  conn.textContent = "";
  return res;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) : "";
}
function fmtNum(n) { return (n ?? 0).toLocaleString(); }
function fmtDuration(s) {
  if (s === null || s === undefined) return "?";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
function fmtLoss(x) { return x === null || x === undefined ? "-" : x.toFixed(3); }

function progressText(job) {
  const s = job.summary;
  if (s) {
    const kept = s.docs_out === null ? "" : ` · ${fmtNum(s.docs_out)} kept`;
    return `${fmtNum(s.records)} read${kept} · ${s.files_done}/${s.files} files`;
  }
  return job.status === "running" ? "starting…" : (job.message || "").slice(0, 80);
}

async function refreshList() {
  const status = document.getElementById("status-filter").value;
  const res = await api("/v1/jobs?limit=100" + (status ? "&status=" + status : ""));
  if (!res.ok) return;
  const { jobs } = await res.json();
  const tbody = document.querySelector("#jobs tbody");
  tbody.replaceChildren();
  for (const job of jobs) {
    const tr = el("tr", { "data-job": job.id });
    if (job.id === state.selected) tr.classList.add("selected");
    tr.append(el("td", {}, job.id), el("td", {}, job.name), el("td", {}, job.kind));
    const st = el("td");
    st.append(el("span", { class: "status " + job.status }, job.status));
    tr.append(st, el("td", {}, fmtTime(job.created_at)), el("td", { class: "progress" }, progressText(job)));
    tr.addEventListener("click", () => select(job.id));
    tbody.append(tr);
  }
  document.getElementById("empty").hidden = jobs.length > 0;
  if (!state.selected && jobs.length) {  // a running job first, else the newest
    select((jobs.find((j) => j.status === "running") || jobs[0]).id);
  }
}

async function select(id) {
  state.selected = id;
  document.querySelectorAll("#jobs tbody tr").forEach(
    (tr) => tr.classList.toggle("selected", tr.dataset.job === id));
  await refreshDetail();
}

async function refreshDetail() {
  if (!state.selected) return;
  const res = await api("/v1/jobs/" + state.selected);
  if (!res.ok) return;
  const job = await res.json();
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-title").textContent = `${job.name} (${job.id})`;
  const p = job.progress;
  const rate = p && p.docs_per_s ? ` · ${fmtNum(Math.round(p.docs_per_s))} docs/s` : "";
  const retried = job.retry_of ? ` · retry of ${job.retry_of}` : "";
  document.getElementById("detail-meta").textContent =
    `${job.status}${rate} · started ${fmtTime(job.started_at) || "-"} · finished ${fmtTime(job.finished_at) || "-"}` +
    retried + (job.message && !job.error ? ` · ${job.message}` : "");
  const error = document.getElementById("detail-error");
  error.hidden = !job.error;
  error.textContent = job.error ? "error: " + job.error : "";
  const row = document.querySelector(`#jobs tr[data-job="${job.id}"] .progress`);
  if (row) row.textContent = progressText(job);
  const cancel = document.getElementById("cancel");
  cancel.hidden = !["pending", "running"].includes(job.status);
  cancel.onclick = async () => { await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }); tick(); };
  const retry = document.getElementById("retry");
  retry.hidden = !["failed", "cancelled"].includes(job.status);
  retry.onclick = async () => {
    const r = await api(`/v1/jobs/${job.id}/retry`, { method: "POST" });
    const body = await r.json();
    if (r.ok) { state.selected = body.id; } else { error.hidden = false; error.textContent = body.detail; }
    tick();
  };
  linkTo("manifest-link", job.has_manifest, `/v1/jobs/${job.id}/manifest`);
  linkTo("report-link", job.has_report, `/v1/jobs/${job.id}/report`);
  const training = job.kind === "training";
  document.getElementById("curation-view").hidden = training;
  document.getElementById("training-view").hidden = !training;
  if (training) drawTraining(job.training); else { funnelMeta(job, p); drawFunnel(p); }
  await refreshLog(job);
}

function funnelMeta(job, p) {
  const meta = document.getElementById("funnel-meta");
  if (!p) { meta.textContent = ""; return; }
  const units = p.units && p.units.total ? ` · ${p.units.done}/${p.units.total} input units` : "";
  const phase = p.phase ? ` · ${p.phase}` : "";
  const eta = p.status === "running" ? ` · ETA ${p.eta_s === null ? "estimating…" : fmtDuration(p.eta_s)}` :
    ` · took ${fmtDuration(p.elapsed_s)}`;
  meta.textContent = `${p.status}${phase}${units}${eta}`;
}

async function refreshLog(job) {
  const res = await api(`/v1/jobs/${job.id}/logs?tail=200`);
  const pre = document.getElementById("log");
  const text = res.ok ? await res.text() : `(log unavailable: ${res.status})`;
  if (pre.textContent !== text) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

function linkTo(id, show, path) {
  const a = document.getElementById(id);
  a.hidden = !show;
  a.href = path;
  a.onclick = async (ev) => {  // a plain link cannot send the bearer header: fetch, then open a blob
    ev.preventDefault();
    const res = await api(path);
    if (res.ok) window.open(URL.createObjectURL(await res.blob()), "_blank");
  };
}

// Funnel: one row per step (read, then each stage): a bar for docs kept, a lighter bar for docs dropped
// there, scaled to the largest count; labels give the numbers and the drop reasons.
function drawFunnel(p) {
  const box = document.getElementById("funnel");
  if (!p || !p.stages) { box.replaceChildren(el("p", { class: "muted" }, "no progress yet")); return; }
  const rows = [{ name: "read", kept: p.inputs.records, dropped: 0, note: skippedNote(p.inputs.skipped) }];
  for (const s of p.stages) {
    const reasons = Object.entries(s.drops || {}).map(([r, n]) => `${r} ${fmtNum(n)}`).join(", ");
    const speed = s.docs_per_s ? `${fmtNum(Math.round(s.docs_per_s))} docs/s` : "";
    rows.push({ name: s.name, kept: s.docs_out, dropped: Math.max(0, s.docs_in - s.docs_out), note: reasons,
                speed });
  }
  const max = Math.max(1, ...rows.map((r) => r.kept + r.dropped));
  const rowH = 44, labelW = 140, width = 640, barW = width - labelW - 10;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * rowH}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "per-stage funnel");
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    svg.append(svgEl("text", { x: 0, y: y + 14 }, r.name));
    const kw = (r.kept / max) * barW, dw = (r.dropped / max) * barW;
    svg.append(svgEl("rect", { class: "bar", x: labelW, y, width: Math.max(kw, 1), height: 18 }));
    if (dw > 0) svg.append(svgEl("rect", { class: "drop", x: labelW + kw, y, width: dw, height: 18 }));
    const note = `${fmtNum(r.kept)} kept` + (r.dropped ? ` · ${fmtNum(r.dropped)} dropped` : "") +
      (r.note ? ` (${r.note})` : "") + (r.speed ? ` · ${r.speed}` : "");
    svg.append(svgEl("text", { x: labelW, y: y + 32 }, note));
  });
  box.replaceChildren(svg);
}

// Training: step, losses, tokens/s and ETA from the trainer's progress.json; the loss curve from its
// metrics.jsonl (train: solid line; eval: dashed line with points), both against the step.
function drawTraining(t) {
  const meta = document.getElementById("training-meta");
  const box = document.getElementById("loss-chart");
  if (!t) { meta.textContent = "waiting for the trainer's first record"; box.replaceChildren(); return; }
  const tps = t.tokens_per_s ? `${fmtNum(Math.round(t.tokens_per_s))} tokens/s` : "- tokens/s";
  const eta = t.state === "running" ? ` · ETA ${t.eta_s === null ? "estimating…" : fmtDuration(t.eta_s)}` : "";
  meta.textContent = `${t.state || "?"} · step ${fmtNum(t.step)}/${fmtNum(t.max_steps)} · train loss ` +
    `${fmtLoss(t.train_loss)} · eval loss ${fmtLoss(t.eval_loss)} · ${tps}${eta}`;
  const train = t.curve.train, evals = t.curve.eval, all = train.concat(evals);
  if (!all.length) { box.replaceChildren(el("p", { class: "muted" }, "no loss yet")); return; }
  const W = 640, H = 240, L = 48, B = 24, T = 8, R = 10;
  const maxStep = Math.max(t.max_steps || 0, ...all.map((q) => q.step));
  const losses = all.map((q) => q.loss), lo = Math.min(...losses), hi = Math.max(...losses);
  const span = hi - lo || 1;
  const x = (step) => L + (step / Math.max(1, maxStep)) * (W - L - R);
  const y = (loss) => T + (1 - (loss - lo) / span) * (H - T - B);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "loss curve");
  svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
             svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
             svgEl("text", { x: 0, y: T + 10 }, hi.toFixed(2)), svgEl("text", { x: 0, y: H - B }, lo.toFixed(2)),
             svgEl("text", { x: W - R - 80, y: H - 6 }, `step ${fmtNum(maxStep)}`));
  const line = (pts, cls) => svgEl("polyline", { class: cls, points: pts.map((q) => `${x(q.step)},${y(q.loss)}`)
    .join(" ") });
  if (train.length) svg.append(line(train, "train"));
  if (evals.length) {
    svg.append(line(evals, "eval"));
    for (const q of evals) svg.append(svgEl("circle", { class: "eval-point", cx: x(q.step), cy: y(q.loss), r: 3 }));
  }
  svg.append(svgEl("text", { x: L + 8, y: T + 12 }, "train"), svgEl("text", { x: L + 56, y: T + 12 }, "eval"));
  box.replaceChildren(svg);
}

function skippedNote(skipped) {
  return Object.entries(skipped || {}).map(([r, n]) => `skipped ${r} ${fmtNum(n)}`).join(", ");
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function tick() {
  try { await refreshList(); await refreshDetail(); } catch (e) { /* shown in the header */ }
}

function start() {
  takeTokenFromHash();
  document.getElementById("token").value = token();
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("curator-token", document.getElementById("token").value.trim());
    tick();
  });
  document.getElementById("status-filter").addEventListener("change", tick);
  tick();
  state.timer = setInterval(tick, 2000);
}

start();
