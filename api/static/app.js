// curator dashboard: job list with live progress and a per-stage funnel chart (inline SVG).
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
  document.getElementById("detail-meta").textContent =
    `${job.status}${rate} · started ${fmtTime(job.started_at) || "-"} · finished ${fmtTime(job.finished_at) || "-"}` +
    (job.message ? ` · ${job.message}` : "");
  const row = document.querySelector(`#jobs tr[data-job="${job.id}"] .progress`);
  if (row) row.textContent = progressText(job);
  const cancel = document.getElementById("cancel");
  cancel.hidden = !["pending", "running"].includes(job.status);
  cancel.onclick = async () => { await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }); refreshDetail(); };
  linkTo("manifest-link", job.has_manifest, `/v1/jobs/${job.id}/manifest`);
  linkTo("report-link", job.has_report, `/v1/jobs/${job.id}/report`);
  drawFunnel(p);
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
    rows.push({ name: s.name, kept: s.docs_out, dropped: Math.max(0, s.docs_in - s.docs_out), note: reasons });
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
      (r.note ? ` (${r.note})` : "");
    svg.append(svgEl("text", { x: labelW, y: y + 32 }, note));
  });
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
