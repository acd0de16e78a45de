// The modo observer page: the tree from the snapshot, kept live from the event stream
// (/api/v1/events), per-service details, actions with the token, a timeline of crashes and
// restarts. Plain DOM, no framework; every text from the server goes in with textContent.
"use strict";

const services = new Map(); // id -> service document (see the module docs of modo::observe)
const nodes = new Map(); // id -> { li, row, ul, cells }
let selected = null;
let lastSeq = 0;
const RECENT_CRASH_MS = 5000;
const TIMELINE_MAX = 200;

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function duration(ns) {
  if (!ns) return "–";
  if (ns < 1e3) return ns + " ns";
  if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 1 : 0) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms";
  return (ns / 1e9).toFixed(2) + " s";
}

function rate(r) {
  if (!r) return "0";
  return r >= 100 ? Math.round(r).toString() : r.toFixed(1);
}

function clock(ms) {
  const d = new Date(ms);
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
    "." + pad(d.getMilliseconds(), 3);
}

// --- the tree ---------------------------------------------------------------------------

function makeNode(svc) {
  const li = el("li", "svc");
  li.dataset.id = svc.id;
  const row = el("div", "row");
  row.dataset.id = svc.id;
  const name = el("span", "name");
  // CSSOM, not a style attribute: the Content-Security-Policy allows only the style sheet.
  name.style.paddingLeft = (svc.depth || 0) * 18 + "px";
  const toggle = el("span", "toggle", "");
  const dot = el("span", "dot");
  const label = el("span", "label", svc.label);
  name.append(toggle, dot, label);
  const cells = {
    toggle,
    label,
    state: el("span", "state-text"),
    mailbox: el("span", "num mailbox"),
    rate: el("span", "num rate"),
    p50: el("span", "num p50"),
    p99: el("span", "num p99"),
    restarts: el("span", "num restarts"),
  };
  row.append(name, cells.state, cells.mailbox, cells.rate, cells.p50, cells.p99, cells.restarts);
  const ul = el("ul");
  li.append(row, ul);
  row.addEventListener("click", () => select(svc.id));
  toggle.addEventListener("click", (ev) => {
    ev.stopPropagation();
    li.classList.toggle("collapsed");
    paintToggle(svc.id);
  });
  const node = { li, row, ul, cells };
  nodes.set(svc.id, node);
  return node;
}

function paintToggle(id) {
  const node = nodes.get(id);
  if (!node) return;
  const hasChildren = node.ul.children.length > 0;
  node.cells.toggle.textContent = hasChildren ? (node.li.classList.contains("collapsed") ? "▸" : "▾") : "";
}

function paint(id) {
  const svc = services.get(id);
  const node = nodes.get(id);
  if (!svc || !node) return;
  const c = node.cells;
  node.row.dataset.state = svc.state;
  node.row.dataset.restarts = String(svc.restart_count);
  node.row.classList.toggle("recent-crash", (svc.recentCrashUntil || 0) > Date.now());
  node.row.classList.toggle("selected", selected === id);
  c.label.textContent = svc.label;
  c.state.textContent = svc.state;
  c.mailbox.textContent = String(svc.mailbox);
  c.rate.textContent = rate(svc.stats.rate);
  c.p50.textContent = duration(svc.stats.handle_time.p50_ns);
  c.p99.textContent = duration(svc.stats.handle_time.p99_ns);
  c.restarts.textContent = String(svc.restart_count);
  if (selected === id) paintDetails();
}

function attach(svc) {
  const node = nodes.get(svc.id) || makeNode(svc);
  const parent = svc.parent && nodes.get(svc.parent);
  (parent ? parent.ul : $("tree")).append(node.li);
  if (svc.parent) paintToggle(svc.parent);
  paint(svc.id);
}

function add(svc) {
  services.set(svc.id, svc);
  attach(svc);
  // Children seen before their parent (not in snapshot order) move under it now.
  for (const child of svc.children || []) {
    if (nodes.has(child)) attach(services.get(child));
  }
}

function remove(id) {
  const node = nodes.get(id);
  const svc = services.get(id);
  services.delete(id);
  nodes.delete(id);
  if (node) node.li.remove();
  if (svc && svc.parent) paintToggle(svc.parent);
  if (selected === id) {
    selected = null;
    paintDetails();
  }
}

function reset(snapshot) {
  services.clear();
  nodes.clear();
  $("tree").textContent = "";
  for (const svc of snapshot.services) add(svc);
  lastSeq = snapshot.seq;
  summary();
  if (selected && !services.has(selected)) selected = null;
  paintDetails();
}

function summary() {
  let crashed = 0;
  for (const s of services.values()) if (s.state === "crashed") crashed++;
  $("summary").textContent = services.size + " services" + (crashed ? ", " + crashed + " crashed" : "") +
    " · seq " + lastSeq;
}

// --- the stream -------------------------------------------------------------------------

function note(kind, svc, id, atMs, text) {
  const li = el("li", kind);
  li.dataset.kind = kind;
  li.dataset.id = id;
  li.append(el("span", "when", clock(atMs)), el("span", "", (svc ? svc.label : id) + " " + text));
  const list = $("timeline");
  list.prepend(li);
  while (list.children.length > TIMELINE_MAX) list.lastChild.remove();
}

function apply(doc) {
  if (doc.seq !== lastSeq + 1) {
    // A gap cannot happen on one connection; if it does, start again from a snapshot.
    connect();
    return;
  }
  lastSeq = doc.seq;
  for (const ch of doc.changes) {
    const svc = services.get(ch.id);
    switch (ch.kind) {
      case "added":
        add(ch.service);
        break;
      case "removed":
        remove(ch.id);
        break;
      case "state":
        if (svc) svc.state = ch.to;
        break;
      case "crashed":
        if (svc) {
          svc.stats.crashes = ch.crashes;
          svc.stats.last_crash = ch.crash;
          svc.recentCrashUntil = Date.now() + RECENT_CRASH_MS;
          setTimeout(() => paint(ch.id), RECENT_CRASH_MS + 50);
        }
        note("crashed", svc, ch.id, ch.crash ? ch.crash.at_ms : doc.at_ms,
          "crashed: " + (ch.crash ? ch.crash.reason : "?"));
        break;
      case "restarted":
        if (svc) svc.restart_count = ch.restart_count;
        note("restarted", svc, ch.id, doc.at_ms, "restarted (restart count " + ch.restart_count + ")");
        break;
      case "updated":
        if (svc) {
          svc.mailbox = ch.mailbox;
          svc.tasks = ch.tasks;
          svc.flags = ch.flags;
          svc.children = ch.children;
          svc.stats = ch.stats;
        }
        break;
    }
    if (ch.kind !== "added" && ch.kind !== "removed") paint(ch.id);
  }
  summary();
}

let source = null;

function connect() {
  if (source) source.close();
  source = new EventSource("/api/v1/events");
  source.addEventListener("snapshot", (e) => reset(JSON.parse(e.data)));
  source.addEventListener("changes", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("heartbeat", () => {});
  source.onopen = () => {
    $("conn").textContent = "live";
    $("conn").className = "conn conn-up";
  };
  source.onerror = () => {
    // The browser reconnects by itself; the next snapshot starts the page over.
    $("conn").textContent = "reconnecting…";
    $("conn").className = "conn conn-down";
  };
}

// --- details and actions ----------------------------------------------------------------

function select(id) {
  const before = selected;
  selected = id;
  if (before) paint(before);
  paint(id);
  $("action-result").textContent = "";
  // The live detail (crash reason, dead letters) once; the stream keeps the rest current.
  fetch("/api/v1/services/" + encodeURIComponent(id))
    .then((r) => (r.ok ? r.json() : null))
    .then((doc) => {
      const svc = services.get(id);
      if (doc && svc) {
        svc.crash_reason = doc.service.crash_reason;
        svc.dead_letters = doc.service.dead_letters;
        if (selected === id) paintDetails();
      }
    })
    .catch(() => {});
}

function field(dl, name, value) {
  dl.append(el("dt", "", name), el("dd", "f-" + name.replace(/\W+/g, "-"), value));
}

function paintDetails() {
  const svc = selected && services.get(selected);
  const dl = $("d-fields");
  dl.textContent = "";
  for (const b of ["btn-stop", "btn-restart", "btn-crash"]) $(b).disabled = !svc;
  if (!svc) {
    $("d-label").textContent = "Select a service";
    return;
  }
  $("d-label").textContent = svc.label;
  const st = svc.stats;
  field(dl, "state", svc.state);
  field(dl, "id", svc.id);
  field(dl, "type", svc.type_name);
  if (svc.name) field(dl, "name", svc.name);
  field(dl, "mailbox", String(svc.mailbox));
  field(dl, "messages/s", rate(st.rate));
  field(dl, "handled", String(st.handled));
  field(dl, "handle time", "p50 " + duration(st.handle_time.p50_ns) + " · p99 " +
    duration(st.handle_time.p99_ns) + " · max " + duration(st.handle_time.max_ns));
  field(dl, "mailbox wait", "p50 " + duration(st.mailbox_wait.p50_ns) + " · p99 " +
    duration(st.mailbox_wait.p99_ns));
  field(dl, "restarts", String(svc.restart_count));
  field(dl, "crashes", String(st.crashes));
  field(dl, "last crash", st.last_crash ? clock(st.last_crash.at_ms) + " " + st.last_crash.reason : "none");
  field(dl, "tasks", svc.tasks.length ? svc.tasks.join(", ") : "none");
  if (svc.flags.length) field(dl, "flags", svc.flags.join(", "));
  if (svc.dead_letters) field(dl, "dead letters", String(svc.dead_letters));
}

async function act(action) {
  const id = selected;
  if (!id) return;
  const out = $("action-result");
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  const body = {};
  if (action === "crash" && $("crash-reason").value.trim()) body.reason = $("crash-reason").value.trim();
  out.className = "result";
  out.textContent = action + "…";
  try {
    const r = await fetch("/api/v1/services/" + encodeURIComponent(id) + "/" + action, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    const doc = await r.json().catch(() => null);
    if (r.ok && doc) {
      out.className = "result ok";
      out.dataset.status = String(r.status);
      out.textContent = action + (doc.pending ? " requested (still going on)" : " done") +
        ": state " + doc.state + ", restarts " + doc.restart_count;
    } else {
      out.className = "result error";
      out.dataset.status = String(r.status);
      const e = doc && doc.error;
      out.textContent = r.status + " " + (e ? e.code + ": " + e.message : r.statusText);
    }
  } catch (err) {
    out.className = "result error";
    out.dataset.status = "0";
    out.textContent = "request failed: " + err;
  }
}

$("btn-stop").addEventListener("click", () => act("stop"));
$("btn-restart").addEventListener("click", () => act("restart"));
$("btn-crash").addEventListener("click", () => act("crash"));
connect();
