// The page of `symbiont serve`. Every value from the store (names, code, replies, feedback)
// enters the DOM through text nodes only: no innerHTML with data, no inline script.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const KINDS = {
  registered: "#16a34a", compile_error: "#f59e0b", panic: "#dc2626", timeout: "#7c3aed",
  check_failed: "#0891b2", crash: "#111827", other: "#9ca3af",
};
const ISLANDS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0d9488", "#b91c1c", "#4b5563"];
let interval = 2000;
let timer = null;
let viewToken = 0;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "on") { for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); }
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "on") { for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); }
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Links inside the page are built from encoded names only: a run name is never a URL.
const runHref = (name) => "#/run/" + encodeURIComponent(name);
const revHref = (name, n, against) =>
  runHref(name) + "/rev/" + Number(n) + (against === undefined ? "" : "?against=" + Number(against));
const api = (path) => fetch(path, { cache: "no-store" }).then((r) => {
  if (!r.ok) return r.json().then((e) => { throw new Error(e.error || r.statusText); });
  return r.json();
});
const num = (v, d = 6) => (v === null || v === undefined ? "-" : Number(v).toPrecision(d).replace(/\.?0+$/, "").replace(/\.?0+e/, "e"));
function age(seconds) {
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (seconds >= n) return Math.round(seconds / n) + u;
  return Math.max(0, Math.round(seconds)) + "s";
}
// Replaces an element's children with nodes and texts, nested lists flattened, nulls skipped.
function put(el, ...items) {
  el.replaceChildren(...items.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}
function setLive(text) { document.getElementById("live").textContent = text; }
function crumbs(...parts) { document.getElementById("crumbs").replaceChildren(...parts.flatMap((p) => [" / ", p])); }
function markReady(name) {
  document.body.dataset.ready = name;
  window.__symbiontReady = performance.now();
}

function poll(token, fn) {
  clearTimeout(timer);
  const tick = async () => {
    if (token !== viewToken) return;
    try { await fn(); setLive("live · every " + interval / 1000 + " s"); }
    catch (e) { setLive("store unreachable, retrying: " + e.message); }
    if (token === viewToken) timer = setTimeout(tick, interval);
  };
  timer = setTimeout(tick, interval);
}

// ---------------------------------------------------------------- runs list

async function viewRuns(token) {
  crumbs();
  const main = document.getElementById("main");
  const body = h("tbody");
  const table = h("table", { id: "runs" },
    h("thead", null, h("tr", null, ["name", "status", "best", "rounds", "attempts", "tokens", "cost", "age"]
      .map((c, i) => h("th", { class: i > 1 ? "num" : null }, c)))), body);
  const fill = (data) => {
    body.replaceChildren(...data.runs.slice().reverse().map((r) => h("tr", { "data-run": r.name },
      h("td", null, h("a", { href: runHref(r.name) }, r.name)),
      h("td", { class: "status-" + r.status }, r.status + (r.stop_reason ? " (" + r.stop_reason + ")" : "")),
      h("td", { class: "num" }, num(r.best_score)), h("td", { class: "num" }, r.rounds),
      h("td", { class: "num" }, r.attempts), h("td", { class: "num" }, r.tokens),
      h("td", { class: "num" }, Number(r.cost).toFixed(4)), h("td", { class: "num" }, age(data.now - r.updated)))));
    if (!data.runs.length) body.append(h("tr", null, h("td", { colspan: 8, class: "muted" }, "no runs in this store yet")));
  };
  fill(await api("/api/runs"));
  if (token !== viewToken) return;
  put(main, h("h1", null, "Runs"), table);
  markReady("runs");
  poll(token, async () => fill(await api("/api/runs")));
}

// ---------------------------------------------------------------- one run

function progressChart(run) {
  const W = 1100, H = 300, L = 56, R = 10, T = 10, B = 44, band = 26;
  const c = h("canvas", { width: W, height: H, id: "progress" });
  const g = c.getContext("2d");
  const a = run.points, n = a.id.length;
  const maxRound = Math.max(1, run.rounds, ...run.best_per_round.map((b) => b[0]));
  const scores = run.revisions.map((r) => r.score).filter((v) => v !== null);
  let lo = Math.min(...scores), hi = Math.max(...scores);
  if (!scores.length) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (r) => L + (r / maxRound) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B - band);
  g.strokeStyle = "#9ca3af"; g.fillStyle = "#6b7280"; g.font = "11px sans-serif";
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, H - B); g.lineTo(W - R, H - B); g.stroke();
  for (let i = 0; i <= 4; i++) { const v = lo + ((hi - lo) * i) / 4; g.fillText(num(v, 4), 4, y(v) + 4); }
  g.fillText("failed", 4, H - B - band / 2 + 4);
  for (let i = 0; i <= 5; i++) { const r = Math.round((maxRound * i) / 5); g.fillText(String(r), x(r) - 4, H - B + 14); }
  g.fillText("round", W / 2, H - B + 30);
  const lanes = Math.max(1, ...a.lane.map((l) => l + 1));
  for (let i = 0; i < n; i++) {
    const jitter = ((a.lane[i] + (a.attempt[i] % 4) / 4) / lanes - 0.5) * Math.min(0.8, (W / maxRound) / 40);
    const px = x(a.round[i] + jitter);
    const py = a.score[i] === null ? H - B - band / 2 + ((i * 7) % 13) - 6 : y(a.score[i]);
    g.fillStyle = KINDS[a.kind[i]] || KINDS.other;
    g.globalAlpha = 0.75;
    g.fillRect(px - 2, py - 2, 4, 4);
  }
  g.globalAlpha = 1; g.strokeStyle = "#111827"; g.lineWidth = 2; g.beginPath();
  let started = false, prev = 0;
  for (const [rnd, best] of run.best_per_round) {
    if (best === null) continue;
    // A step: the best so far holds until the round that beats it.
    if (!started) { g.moveTo(x(rnd), y(best)); started = true; } else { g.lineTo(x(rnd), prev); g.lineTo(x(rnd), y(best)); }
    prev = y(best);
  }
  g.stroke();
  const counts = {};
  for (const k of a.kind) counts[k] = (counts[k] || 0) + 1;
  const legend = h("div", { class: "legend" }, h("span", null, "— best " + run.objective + " so far"),
    Object.keys(KINDS).filter((k) => counts[k]).map((k) =>
      h("span", { "data-kind": k }, h("i", { style: null, class: "dot-" + k }), k.replace("_", " ") + " " + counts[k])));
  for (const i of legend.querySelectorAll("i")) i.style.background = KINDS[i.className.slice(4)];
  return h("div", { class: "panel" }, legend, c);
}

function lineage(run) {
  const revs = run.revisions;
  const kids = new Map(), byNum = new Map();
  for (const r of revs) { byNum.set(r.number, r); kids.set(r.number, []); }
  const roots = [];
  for (const r of revs) (r.parent !== null && kids.has(r.parent) ? kids.get(r.parent) : roots).push(r);
  // Preorder, islands kept together: each node gets its own row, children below their parent.
  roots.sort((p, q) => (p.island ?? -1) - (q.island ?? -1) || p.number - q.number);
  const order = [];
  const stack = roots.slice().reverse();
  while (stack.length) {
    const r = stack.pop(); order.push(r);
    const ks = kids.get(r.number).slice().sort((p, q) => (p.island ?? -1) - (q.island ?? -1) || q.number - p.number);
    stack.push(...ks);
  }
  const maxRound = Math.max(1, ...revs.map((r) => r.round));
  const W = 1100, rowH = Math.max(1.2, Math.min(14, 600 / Math.max(1, order.length)));
  const H = Math.ceil(order.length * rowH) + 30;
  const pos = new Map();
  order.forEach((r, i) => pos.set(r.number, [40 + (r.round / maxRound) * (W - 60), 10 + i * rowH]));
  const svg = s("svg", { width: W, height: H, id: "lineage", viewBox: `0 0 ${W} ${H}` });
  const edges = [];
  for (const r of revs) {
    if (r.parent === null || !pos.has(r.parent)) continue;
    const [x1, y1] = pos.get(r.parent), [x2, y2] = pos.get(r.number);
    edges.push(`M${x1.toFixed(1)} ${y1.toFixed(1)}V${y2.toFixed(1)}H${x2.toFixed(1)}`);
  }
  svg.append(s("path", { class: "edge", d: edges.join("") }));
  const best = run.best_revision;
  for (const r of order) {
    const [cx, cy] = pos.get(r.number);
    const colour = r.status === "failed" ? "#9ca3af" : ISLANDS[(r.island ?? 0) % ISLANDS.length];
    svg.append(s("circle", {
      class: "node", cx: cx.toFixed(1), cy: cy.toFixed(1), r: r.number === best ? 5 : 3, fill: colour,
      stroke: r.number === best ? "#111827" : null, "data-rev": r.number,
      on: { click: () => { location.hash = revHref(run.name, r.number); } },
    }, s("title", null, `revision ${r.number} · round ${r.round} · island ${r.island ?? "-"} · ${run.objective} ${num(r.score)}`)));
  }
  const islands = [...new Set(revs.map((r) => r.island).filter((i) => i !== null))].sort((p, q) => p - q);
  const legend = h("div", { class: "legend" }, h("span", null, "parent → child, left to right by round; click a revision"),
    islands.map((i) => { const dot = h("i"); dot.style.background = ISLANDS[i % ISLANDS.length]; return h("span", null, dot, "island " + i); }));
  return h("div", { class: "panel" }, legend, svg);
}

function paretoFront(points, dirs) {
  // Points not dominated on every objective (direction: +1 maximise, -1 minimise).
  const better = (p, q) => dirs.every(([k, d]) => d * p.metrics[k] >= d * q.metrics[k]) && dirs.some(([k, d]) => d * p.metrics[k] > d * q.metrics[k]);
  return points.filter((p) => !points.some((q) => q !== p && better(q, p)));
}

function pareto(run) {
  const revs = run.revisions.filter((r) => r.status !== "failed");
  const keys = new Set();
  for (const r of revs) for (const [k, v] of Object.entries(r.metrics)) if (typeof v === "number") keys.add(k);
  const objectives = run.objectives ? Object.keys(run.objectives) : [...keys];
  if (objectives.length < 2) return null;
  const dir = (k) => ((run.objectives && run.objectives[k]) === "min" ? -1 : 1);
  const wrap = h("div", { class: "panel", id: "pareto" });
  const sel = (v) => h("select", null, objectives.map((k) => h("option", { value: k, selected: k === v ? "" : null }, k)));
  const sx = sel(objectives[0]), sy = sel(objectives[1]);
  const plot = h("div");
  const draw = () => {
    const kx = sx.value, ky = sy.value;
    const pts = revs.filter((r) => objectives.every((k) => typeof r.metrics[k] === "number"));
    const front = new Set(paretoFront(pts, objectives.map((k) => [k, dir(k)])));
    const W = 540, H = 340, L = 60, B = 36;
    const xs = pts.map((p) => p.metrics[kx]), ys = pts.map((p) => p.metrics[ky]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const X = (v) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - 12);
    const Y = (v) => 10 + (1 - (v - y0) / (y1 - y0 || 1)) * (H - B - 20);
    const svg = s("svg", { width: W, height: H });
    svg.append(s("path", { class: "axis", d: `M${L} 10V${H - B}H${W - 6}` }),
      s("text", { x: W / 2, y: H - 6 }, kx), s("text", { x: 4, y: 12 }, ky),
      s("text", { x: L, y: H - B + 14 }, num(x0, 4)), s("text", { x: W - 60, y: H - B + 14 }, num(x1, 4)),
      s("text", { x: 4, y: H - B }, num(y0, 4)), s("text", { x: 4, y: 26 }, num(y1, 4)));
    const fpts = [...front].sort((p, q) => p.metrics[kx] - q.metrics[kx]);
    if (fpts.length > 1) svg.append(s("path", { d: "M" + fpts.map((p) => `${X(p.metrics[kx]).toFixed(1)} ${Y(p.metrics[ky]).toFixed(1)}`).join("L"), stroke: "#dc2626", fill: "none", "stroke-dasharray": "4 3" }));
    for (const p of pts) {
      const onFront = front.has(p);
      svg.append(s("circle", { class: "pt", cx: X(p.metrics[kx]).toFixed(1), cy: Y(p.metrics[ky]).toFixed(1), r: onFront ? 5 : 3,
        fill: onFront ? "#dc2626" : "#93c5fd", "data-rev": p.number, "data-front": onFront ? "1" : "0",
        on: { click: () => { location.hash = revHref(run.name, p.number); } } },
      s("title", null, `revision ${p.number}: ${kx} ${num(p.metrics[kx])}, ${ky} ${num(p.metrics[ky])}${onFront ? " (front)" : ""}`)));
    }
    plot.replaceChildren(svg, h("div", { class: "muted" }, `${front.size} of ${pts.length} revisions on the front of ${objectives.join(", ")}`));
  };
  sx.addEventListener("change", draw); sy.addEventListener("change", draw);
  draw();
  wrap.append(h("div", null, "x ", sx, " y ", sy), plot);
  return wrap;
}

function budgetCards(run) {
  const used = { rounds: run.rounds, attempts: run.attempts, tokens: run.tokens, cost: run.cost, seconds: run.seconds };
  const cards = [
    ["status", run.status + (run.stop_reason ? " · " + run.stop_reason : "")],
    ["best " + run.objective, run.best_score === null ? "-" : num(run.best_score) + " (rev " + run.best_revision + ")"],
    ["strategy", run.strategy || "-"],
    ["attempts", h("span", { id: "attempt-count" }, String(run.attempts))],
  ];
  for (const k of ["rounds", "tokens", "cost", "seconds"]) {
    const limit = run.budget[k];
    const u = k === "cost" ? Number(used[k]).toFixed(4) : k === "seconds" ? Math.round(used[k]) : used[k];
    cards.push([k, limit === null || limit === undefined ? String(u) : `${u} / ${limit}`]);
  }
  for (const k of ["target", "patience", "attempts"]) if (run.budget[k] !== null && run.budget[k] !== undefined) cards.push(["budget " + k, String(run.budget[k])]);
  return h("div", { class: "cards", id: "summary" }, cards.map(([k, v]) => h("div", { class: "card" }, h("span", { class: "muted" }, k), h("b", null, v))));
}

function roundsTable(run) {
  const rows = run.rounds_table.slice(-30).reverse();
  return h("table", { id: "rounds" },
    h("thead", null, h("tr", null, ["round", "lanes", "attempts", "failures", "revisions", "high", "tokens", "cost"].map((c) => h("th", { class: "num" }, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, [r.round, r.lanes, r.attempts, r.failures, r.revisions, num(r.high), r.tokens, Number(r.cost).toFixed(4)].map((v) => h("td", { class: "num" }, v))))));
}

function renderRun(run) {
  const p = pareto(run);
  return [
    h("h1", null, run.name),
    h("p", { class: "muted" }, (run.task || "").split("\n")[0].slice(0, 300)),
    budgetCards(run),
    h("h2", null, "Attempts and best score per round"), progressChart(run),
    h("h2", null, `Lineage (${run.revisions.length} revisions)`), lineage(run),
    p && h("h2", null, "Pareto front"), p,
    h("h2", null, "Last rounds"), roundsTable(run),
  ];
}

async function viewRun(token, name) {
  crumbs(h("a", { href: runHref(name) }, name));
  let run = await api("/api/runs/" + encodeURIComponent(name));
  if (token !== viewToken) return;
  const main = document.getElementById("main");
  put(main, renderRun(run));
  markReady("run");
  let stamp = null;
  poll(token, async () => {
    const st = await api("/api/runs/" + encodeURIComponent(name) + "/stamp");
    const key = JSON.stringify(st);
    if (stamp === null) { stamp = key; if (st.attempts === run.attempts && st.status === run.status && st.updated === run.updated) return; }
    if (key === stamp && run.attempts === st.attempts) return;
    stamp = key;
    run = await api("/api/runs/" + encodeURIComponent(name));
    if (token !== viewToken) return;
    const y = window.scrollY;
    put(main, renderRun(run));
    window.scrollTo(0, y);
  });
}

// ---------------------------------------------------------------- one revision

const RUST = new RegExp([
  String.raw`(?<com>//[^\n]*|/\*[\s\S]*?(?:\*/|$))`,
  String.raw`(?<str>b?"(?:\\[\s\S]|[^"\\])*"?|b?'(?:\\.|[^'\\\n])')`,
  String.raw`(?<num>\b\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?(?:[iu](?:8|16|32|64|128|size)|f32|f64)?\b)`,
  String.raw`(?<mac>\b[a-z_][a-zA-Z0-9_]*!)`,
  String.raw`(?<kw>\b(?:as|break|const|continue|crate|else|enum|extern|fn|for|if|impl|in|let|loop|match|mod|move|mut|pub|ref|return|self|Self|static|struct|super|trait|type|unsafe|use|where|while|true|false|dyn)\b)`,
  String.raw`(?<ty>\b(?:[A-Z][A-Za-z0-9_]*|[iu](?:8|16|32|64|128|size)|f32|f64|bool|char|str)\b)`,
].join("|"), "g");

function highlight(code) {
  // Text nodes and spans only: the code is never parsed as HTML.
  const pre = h("pre", { class: "code", id: "code" });
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of code.matchAll(RUST)) {
    if (m.index > last) frag.append(document.createTextNode(code.slice(last, m.index)));
    const kind = Object.keys(m.groups).find((k) => m.groups[k] !== undefined);
    frag.append(h("span", { class: "tok-" + kind }, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(document.createTextNode(code.slice(last)));
  pre.append(frag);
  return pre;
}

function textBlock(t, fullHref, cls) {
  if (!t) return h("span", { class: "muted" }, "(none)");
  return h("div", null, h("pre", { class: cls || null }, t.text),
    t.cut ? h("a", { href: fullHref, target: "_blank", rel: "noopener noreferrer", class: "show-all" }, `show all (${t.length.toLocaleString()} characters)`) : null);
}

function attemptView(run, a) {
  const base = "/api/runs/" + encodeURIComponent(run) + "/attempts/" + Number(a.id) + "/";
  const timings = Object.entries(a.timings).map(([k, v]) => `${k} ${Number(v).toFixed(3)} s`).join(", ");
  const dot = h("i"); dot.style.cssText = `display:inline-block;width:10px;height:10px;border-radius:50%;background:${KINDS[a.kind] || KINDS.other}`;
  return h("details", { class: "attempt", "data-attempt": a.id },
    h("summary", null, dot, ` attempt ${a.attempt}: ${a.failure_kind || a.outcome} → ${a.decision} · ${a.prompt_tokens}+${a.completion_tokens} tokens · ${a.model || "-"}`),
    h("p", { class: "muted" }, "timings: " + (timings || "-") + " · cost " + Number(a.cost).toFixed(4)),
    h("h3", null, "Prompt"),
    a.prompt.map((m) => h("div", { class: "msg" }, h("div", { class: "role" }, m.role), textBlock(m.content, base + "prompt"))),
    h("h3", null, "Reply"), h("div", { class: "reply" }, textBlock(a.reply, base + "reply")),
    h("h3", null, "Feedback"), h("div", { class: "feedback" }, textBlock(a.feedback, base + "feedback")));
}

async function viewRevision(token, name, number, against) {
  const q = against === null ? "" : "?against=" + Number(against);
  const rev = await api("/api/runs/" + encodeURIComponent(name) + "/revisions/" + Number(number) + q);
  if (token !== viewToken) return;
  crumbs(h("a", { href: runHref(name) }, name), h("span", null, "revision " + rev.number));
  const codeHref = "/api/runs/" + encodeURIComponent(name) + "/revisions/" + Number(number) + "/code";
  const metrics = h("table", { id: "metrics" }, h("tbody", null,
    [["score", num(rev.score)], ["spread", num(rev.spread)], ["status", rev.status], ["round", rev.round], ["lane", rev.lane ?? "-"], ["island", rev.island ?? "-"],
      ["parent", rev.parent === null ? "-" : h("a", { href: revHref(name, rev.parent) }, String(rev.parent))],
      ...Object.entries(rev.metrics).map(([k, v]) => [k, typeof v === "number" ? num(v) : JSON.stringify(v)])]
      .map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v)))));
  const picker = h("select", { id: "against" }, h("option", { value: "" }, "parent"),
    rev.revisions.filter((n) => n !== rev.number).map((n) => h("option", { value: n, selected: against === n ? "" : null }, "revision " + n)));
  picker.addEventListener("change", () => { location.hash = picker.value === "" ? revHref(name, number) : revHref(name, number, picker.value); });
  const diff = rev.diff
    ? h("div", { class: "diff", id: "diff" }, rev.diff.lines.length ? rev.diff.lines.map(([k, t]) => h("div", { class: k }, t)) : h("div", { class: "muted" }, "identical code"))
    : h("p", { class: "muted" }, "the seed has no parent: pick a revision to compare with");
  put(document.getElementById("main"),
    h("h1", null, `${name} · revision ${rev.number}`), metrics,
    rev.feedback ? h("div", null, h("h2", null, "Feedback"), textBlock(rev.feedback, codeHref)) : null,
    h("h2", null, "Code"), highlight(rev.code.text),
    rev.code.cut ? h("a", { href: codeHref, target: "_blank", rel: "noopener noreferrer" }, "show all") : null,
    h("h2", null, "Diff against ", picker), diff,
    h("h2", null, `Attempts that led to it (${rev.attempts.length})`),
    rev.attempts.length ? rev.attempts.map((a) => attemptView(name, a)) : h("p", { class: "muted" }, "none (the seed)"),
    rev.evaluations.length ? h("h2", null, "Evaluations") : null,
    rev.evaluations.length ? h("table", null, h("tbody", null, rev.evaluations.map((e) => h("tr", null,
      [e.purpose, "repeat " + e.repeat, e.outcome, num(e.score), Number(e.seconds).toFixed(3) + " s"].map((v) => h("td", null, v)))))) : null);
  markReady("revision");
  setLive("");
}

// ---------------------------------------------------------------- router

async function route() {
  const token = ++viewToken;
  clearTimeout(timer);
  delete document.body.dataset.ready;
  const hash = location.hash.slice(1);
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "run" && parts.length >= 2) {
      const name = decodeURIComponent(parts[1]);
      if (parts[2] === "rev" && parts.length >= 4) {
        const ag = new URLSearchParams(query || "").get("against");
        await viewRevision(token, name, Number(parts[3]), ag === null ? null : Number(ag));
      } else await viewRun(token, name);
    } else await viewRuns(token);
  } catch (e) {
    if (token === viewToken) put(document.getElementById("main"), h("p", { class: "error" }, "error: " + e.message));
  }
}

(async () => {
  const forced = new URLSearchParams(location.search).get("interval");
  try { interval = (await api("/api/config")).interval * 1000; } catch (e) { /* default */ }
  if (forced) interval = Math.max(100, Number(forced) * 1000);
  window.addEventListener("hashchange", route);
  route();
})();
