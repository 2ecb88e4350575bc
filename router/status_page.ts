/**
 * The router's live status page (`/` on the HTTP port): the cluster, each
 * database with its state, position, lag, keys and reads pending (a bar
 * while it syncs), clients, a hold's reason, and operations per second over
 * the last five minutes as a chart (uPlot). It polls `/stats.json` every
 * second. Everything is served from the program itself: the page below, and
 * uPlot's script and style sheet, imported as text.
 *
 * @module
 */

import uplotScript from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotStyle from "uplot/dist/uPlot.min.css" with { type: "text" };

/** uPlot's script, served as `/uplot.js`. */
export const UPLOT_JS: string = uplotScript;
/** uPlot's style sheet, served as `/uplot.css`. */
export const UPLOT_CSS: string = uplotStyle;

/** The page, served as `/`. */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KVNDB status</title>
<link rel="stylesheet" href="uplot.css">
<style>
  :root { color-scheme: light dark; --ok: #2e7d32; --warn: #ef6c00; --bad: #c62828; --line: #8884; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; }
  header { padding: 14px 24px; background: #1f2933; color: #f5f7fa; display: flex; gap: 28px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header .fact b { font-variant-numeric: tabular-nums; }
  main { padding: 16px 24px; max-width: 1200px; }
  section { margin-bottom: 22px; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); }
  th { font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; opacity: .75; }
  td.num { text-align: right; }
  .state { font-weight: 600; }
  .state.ready { color: var(--ok); }
  .state.syncing, .state.replaying, .state.joining { color: var(--warn); }
  .bar { position: relative; height: 8px; background: var(--line); border-radius: 4px; min-width: 140px; }
  .bar > div { position: absolute; inset: 0 auto 0 0; background: var(--warn); border-radius: 4px; }
  .hold { background: #fff3e0; color: #5d3200; border-left: 4px solid var(--warn); padding: 10px 14px; white-space: pre-wrap; }
  .error { color: var(--bad); }
  #chart { min-height: 240px; }
  footer { opacity: .6; font-size: 12px; padding: 0 24px 16px; }
</style>
</head>
<body>
<header>
  <h1>KVNDB</h1>
  <span class="fact">cluster <b id="cluster">…</b></span>
  <span class="fact">sequence <b id="seq">…</b></span>
  <span class="fact">uptime <b id="uptime">…</b></span>
  <span class="fact">clients <b id="clients">…</b></span>
  <span class="fact">health <b id="health">…</b></span>
</header>
<main>
  <section id="hold-section" hidden><h2>Hold</h2><div class="hold" id="hold"></div></section>
  <section>
    <h2>Databases</h2>
    <table>
      <thead><tr><th>#</th><th>address</th><th>backend</th><th>state</th><th class="num">applied</th><th class="num">lag</th><th class="num">keys</th><th class="num">reads pending</th><th>sync</th></tr></thead>
      <tbody id="databases"><tr><td colspan="9">Loading…</td></tr></tbody>
    </table>
  </section>
  <section>
    <h2>Operations per second</h2>
    <div id="chart"></div>
  </section>
</main>
<footer id="footer">Refreshes every second.</footer>
<script src="uplot.js"></script>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const points = [[], []];
let last;
let chart;
function text(id, value) { $(id).textContent = value; }
function duration(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
}
function cell(value, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (value instanceof Node) td.append(value); else td.textContent = String(value);
  return td;
}
function render(stats) {
  text("cluster", stats.clusterId ? stats.clusterId.slice(0, 12) : "(none yet)");
  text("seq", stats.seq.toLocaleString("en"));
  text("uptime", duration(stats.uptime));
  text("clients", stats.clients);
  const ready = stats.databases.filter((db) => db.state === "ready").length;
  text("health", stats.hold ? "holding" : ready > 0 ? ready + " of " + stats.databases.length + " ready" : "no database ready");
  $("hold-section").hidden = !stats.hold;
  if (stats.hold) text("hold", stats.hold.reason);
  const rows = stats.databases.map((db) => {
    const tr = document.createElement("tr");
    tr.dataset.state = db.state;
    let sync = "";
    if (db.sync) {
      const wrap = document.createElement("div");
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("div");
      fill.style.width = Math.min(100, db.sync.percent) + "%";
      bar.append(fill);
      const label = document.createElement("span");
      label.className = "sync-label";
      label.textContent = db.sync.percent + " % · " + db.sync.keys.toLocaleString("en") + " keys · " + db.sync.keysPerSecond.toLocaleString("en") + "/s";
      wrap.append(bar, label);
      sync = wrap;
    }
    tr.append(
      cell(db.id), cell(db.peer),
      cell(db.volatile === undefined ? "?" : db.volatile ? "memory" : "durable"),
      cell(db.state, "state " + db.state),
      cell(db.applied.toLocaleString("en"), "num"),
      cell((stats.seq - db.applied).toLocaleString("en"), "num"),
      cell(db.keys.toLocaleString("en"), "num"),
      cell(db.outstanding, "num"),
      cell(sync),
    );
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.append(cell("No database connected."));
    rows.push(tr);
  }
  $("databases").replaceChildren(...rows);
  // Operations per second, from the counters' growth since the last poll.
  const total = Object.entries(stats.operations).filter(([name]) => name !== "errors").reduce((sum, [, n]) => sum + n, 0);
  const now = Date.now() / 1000;
  if (last) {
    points[0].push(now);
    points[1].push(Math.max(0, (total - last.total) / (now - last.at)));
    while (points[0].length > 300) { points[0].shift(); points[1].shift(); }
  }
  last = { total, at: now };
  if (typeof uPlot === "function") {
    const width = Math.max(320, $("chart").clientWidth || 900);
    if (!chart) {
      chart = new uPlot({
        width, height: 240,
        series: [{}, { label: "operations/s", stroke: "#1e88e5", fill: "#1e88e522", width: 2 }],
        axes: [{}, { size: 70 }],
      }, points, $("chart"));
    } else chart.setData(points);
  }
  text("footer", "Refreshes every second. Last update " + new Date().toLocaleTimeString("en") + ".");
}
async function poll() {
  try {
    const response = await fetch("stats.json", { cache: "no-store" });
    if (!response.ok) throw new Error(response.status + " " + (await response.text()));
    render(await response.json());
  } catch (error) {
    $("footer").innerHTML = "";
    const span = document.createElement("span");
    span.className = "error";
    span.textContent = "Cannot reach the router: " + error.message;
    $("footer").append(span);
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
`;
