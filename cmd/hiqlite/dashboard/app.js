"use strict";
// The dashboard: polls /api/members and /api/stats every second and runs
// the SQL console. Everything shown from the server goes through
// textContent: no data ever becomes HTML.

const pollMs = 1000;
const sparkLen = 120;

const $ = (id) => document.getElementById(id);

// el makes an element with text (never HTML) and optional class.
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, body) {
  const opts = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-Hiqlite-Dashboard"] = "1";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    location.reload(); // the session ended: back to the login page
    throw new Error("not logged in");
  }
  const data = await resp.json().catch(() => ({ error: resp.status + " " + resp.statusText }));
  return { ok: resp.ok, data };
}

function known(v) {
  return v !== null && v !== undefined;
}

function role(m) {
  if (m.is_leader === 1 || m.is_leader === true) return "leader";
  if (m.voter === 0 || m.voter === false) return "non-voter";
  return "follower";
}

// A member re-announces its state at least every 10 s when nothing changed
// (and at once when its index, term or role does): only an age well past
// that says its gossip stopped.
const staleAfterMs = 25000;

function health(m, rep) {
  if (m.node_id === rep.self) return rep.fault ? "fault: " + rep.fault : "ok";
  if (!known(m.state) || m.state === "unknown") return "not reported to this node";
  if (m.state === "shutdown") return "down";
  if (known(m.state_age_ms) && m.state_age_ms > staleAfterMs) return "stale (" + Math.round(m.state_age_ms / 1000) + "s)";
  return "ok";
}

function renderMembers(rep) {
  $("self").textContent = rep.self;
  $("leader").textContent = rep.leader || "none right now";
  const merr = $("members-error");
  merr.hidden = !rep.error;
  merr.textContent = rep.error || "";
  // A member's lag: hiqlite_nodes.lag where the node knows it (on the
  // leader), else how far its applied index is behind the leader's as this
  // node knows them. Other members' values are as they last reported them,
  // so a member may look ahead of the leader: that shows as 0.
  const leaderRow = rep.members.find((m) => role(m) === "leader");
  const leaderApplied = leaderRow && known(leaderRow.applied_index) ? leaderRow.applied_index : null;
  const tbody = $("members").tBodies[0];
  const rows = [];
  for (const m of rep.members) {
    const tr = el("tr");
    const r = role(m);
    tr.className = r;
    tr.dataset.node = m.node_id;
    const name = el("td", m.node_id);
    if (m.node_id === rep.self) name.append(el("span", " (this node)", "hint"));
    if (r === "leader") name.prepend(el("span", "★ ", "star"));
    let lag = "–";
    if (known(m.lag)) lag = m.lag;
    else if (r === "leader") lag = 0;
    else if (known(m.applied_index) && leaderApplied !== null) lag = Math.max(0, leaderApplied - m.applied_index);
    const h = health(m, rep);
    tr.append(name, el("td", m.raft_addr), el("td", r, "role"), el("td", known(m.state) ? m.state : "–"),
      el("td", known(m.applied_index) ? m.applied_index : "–"), el("td", lag),
      el("td", h, h === "ok" ? "ok" : "warn"));
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

let last = null;
const spark = [];

function renderStats(s) {
  $("applied").textContent = s.applied_index;
  $("logout").hidden = !s.token;
  $("write-note").textContent = s.console ? "" : "off: this serve has no token and is not on loopback (start it with --http-token-file)";
  $("run").disabled = !s.console;
  const t = Date.parse(s.time);
  if (last && t > last.t) {
    const dt = (t - last.t) / 1000;
    const w = (s.applied_index - last.applied) / dt;
    const r = (s.console_reads - last.reads) / dt;
    $("write-rate").textContent = w.toFixed(1);
    $("read-rate").textContent = r.toFixed(1);
    spark.push(w);
    if (spark.length > sparkLen) spark.shift();
    drawSpark();
  }
  last = { t, applied: s.applied_index, reads: s.console_reads };
  const items = s.leader_changes.map((c) => {
    const li = el("li");
    li.append(el("time", new Date(c.time).toLocaleTimeString()), el("span", " " + c.leader));
    return li;
  });
  if (items.length === 0) items.push(el("li", "none seen yet", "hint"));
  $("leader-changes").replaceChildren(...items);
}

function drawSpark() {
  const c = $("spark");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...spark);
  g.strokeStyle = "#2f6fde";
  g.lineWidth = 2;
  g.beginPath();
  const slots = Math.max(30, spark.length); // fills the width as samples come
  spark.forEach((v, i) => {
    const x = (i / (slots - 1)) * c.width;
    const y = c.height - 4 - (v / max) * (c.height - 8);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#666";
  g.font = "11px sans-serif";
  g.fillText("max " + max.toFixed(0) + "/s", 4, 12);
}

async function poll() {
  try {
    const [m, s] = await Promise.all([api("/api/members"), api("/api/stats")]);
    renderMembers(m.data);
    renderStats(s.data);
    $("conn").textContent = "updated " + new Date().toLocaleTimeString();
    $("conn").className = "conn ok";
  } catch (e) {
    $("conn").textContent = "cannot reach serve: " + e;
    $("conn").className = "conn warn";
  }
  setTimeout(poll, pollMs);
}

function showResult(res) {
  const thead = $("result").tHead;
  const tbody = $("result").tBodies[0];
  const head = el("tr");
  for (const c of res.columns || []) head.append(el("th", c));
  thead.replaceChildren(head);
  tbody.replaceChildren(...(res.rows || []).map((row) => {
    const tr = el("tr");
    for (const v of row) tr.append(el("td", v === null ? "NULL" : v, v === null ? "null" : ""));
    return tr;
  }));
  const n = (res.rows || []).length;
  let info = n + (n === 1 ? " row" : " rows");
  if (res.truncated) info += " (only the first " + n + " shown)";
  if (res.wrote) info += "; written through the leader";
  $("result-info").textContent = info;
}

$("console").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = $("error");
  const btn = $("run");
  btn.disabled = true;
  err.hidden = true;
  $("result-info").textContent = "running…";
  try {
    const { ok, data } = await api("/api/query", { sql: $("sql").value, consistency: $("consistency").value });
    if (!ok || data.error) {
      err.textContent = data.error || "failed";
      err.hidden = false;
      $("result-info").textContent = "";
      $("result").tHead.replaceChildren();
      $("result").tBodies[0].replaceChildren();
    } else {
      showResult(data);
    }
  } catch (e) {
    err.textContent = String(e);
    err.hidden = false;
    $("result-info").textContent = "";
  } finally {
    btn.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  await api("/dashboard/logout", {}).catch(() => {});
  location.reload();
});

poll();
