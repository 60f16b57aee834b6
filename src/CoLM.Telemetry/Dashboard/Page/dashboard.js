// The live dashboard: it follows one run's metrics.jsonl rows and status.json as server-sent
// events (/api/runs/{i}/events) and draws them with uPlot. Every chart is rebuilt from the rows
// received, so a page opened late, or on a finished run (`colm dashboard RUN_DIR`), shows the same
// as one that watched from the start. window.colmDashboard exposes the charts' data for tests.
"use strict";

(() => {
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  const phaseOrder = ["sketch", "select", "train", "allreduce"];

  const state = { rows: 0, steps: [], evals: [], events: [], checkpoints: [], status: null, run: null, lastRowAt: null, nodes: [] };
  const charts = new Map(); // element id -> { plot, key }
  let source = null;
  let drawPending = false;

  window.colmDashboard = {
    state,
    /** The x values (steps) a chart holds; empty when it is not drawn yet. */
    points: id => (charts.has(id) ? Array.from(charts.get(id).plot.data[0]) : []),
    /** The labels of a chart's series, x axis first. */
    labels: id => (charts.has(id) ? charts.get(id).plot.series.map(s => s.label) : []),
    /** One series' values, by label. */
    values: (id, label) => {
      if (!charts.has(id)) return [];
      const { plot } = charts.get(id);
      const i = plot.series.findIndex(s => s.label === label);
      return i < 0 ? [] : Array.from(plot.data[i]);
    },
  };

  const $ = id => document.getElementById(id);

  async function start() {
    const response = await fetch("api/runs");
    const runs = await response.json();
    const select = $("run-select");
    select.replaceChildren(...runs.map(r => new Option(r.name, String(r.index))));
    if (runs.length === 0) {
      $("state").textContent = "no run yet";
      setTimeout(start, 2000);
      return;
    }
    const wanted = new URLSearchParams(location.search).get("run");
    const index = wanted !== null && runs.some(r => String(r.index) === wanted) ? wanted : String(runs[runs.length - 1].index);
    select.value = index;
    select.onchange = () => { location.search = "?run=" + select.value; };
    follow(index);
    pollNodes();
  }

  // The cluster's members change rarely and are not in the run directory: asked every 2 s.
  async function pollNodes() {
    try {
      const nodes = await (await fetch("api/nodes")).json();
      state.nodes = nodes;
      $("nodes").tBodies[0].replaceChildren(...nodes.map(n =>
        tableRow([n.address, n.roles.join(", "), n.status, n.reachable ? "yes" : "no"], n.reachable ? "" : "lost")));
    } catch (e) {
      // The host went away (a finished `colm train`); the run's own rows stay on the page.
    }
    setTimeout(pollNodes, 2000);
  }

  function follow(index) {
    source = new EventSource(`api/runs/${index}/events`);
    source.addEventListener("run", e => {
      state.run = JSON.parse(e.data);
      $("run-name").textContent = state.run.name;
      document.title = `colm ${state.run.name}`;
    });
    source.addEventListener("row", e => {
      accept(JSON.parse(e.data));
      state.rows++;
      state.lastRowAt = Date.now();
      schedule();
    });
    source.addEventListener("status", e => {
      state.status = JSON.parse(e.data);
      schedule();
    });
    source.onerror = () => { $("freshness").textContent = "reconnecting…"; };
  }

  function accept(row) {
    switch (row.kind) {
      case "step": state.steps.push(row); break;
      case "eval": state.evals.push(row); break;
      case "checkpoint": state.checkpoints.push(row); break;
      case "membership": case "restart": case "recovery": case "run-restart": state.events.push(row); break;
      default: break;
    }
  }

  // Rows arrive in bursts (a whole run at once when the page opens): draw at most every 250 ms.
  function schedule() {
    if (drawPending) return;
    drawPending = true;
    setTimeout(() => { drawPending = false; draw(); }, 250);
  }

  function draw() {
    drawOverview();
    const steps = state.steps;
    const x = steps.map(r => r.step);
    line("chart-loss", x, [["train loss", steps.map(r => r.loss)]], "loss");
    line("chart-lr", x, [["learning rate", steps.map(r => r.lr)]]);
    line("chart-throughput", x, [["samples/s", steps.map(r => r.samplesPerSecond)]]);
    line("chart-tokens", x, [["tokens/s", steps.map(r => r.tokensPerSecond ?? null)]]);
    line("chart-grad-norm", x, [["grad norm", steps.map(r => r.gradNorm ?? null)]]);
    const phases = keysOf(steps.map(r => r.phases), phaseOrder);
    stacked("chart-phases", x, phases, phases.map(p => steps.map(r => (r.phases && r.phases[p]) || 0)), "s");
    const ranks = [...new Set(steps.flatMap(r => (r.ranks || []).map(k => k.rank)))].sort((a, b) => a - b);
    const perRank = (rank, field) => steps.map(r => {
      const k = (r.ranks || []).find(q => q.rank === rank);
      return k ? k[field] : null;
    });
    line("chart-ranks", x, [...ranks.map(k => [`compute r${k}`, perRank(k, "compute")]), ...ranks.map(k => [`all-reduce r${k}`, perRank(k, "allReduce")])], "s");
    line("chart-memory", x, ranks.map(k => [`r${k}`, perRank(k, "peakMemoryBytes").map(v => (v === null ? null : v / 1048576))]), "MiB");
    const sources = keysOf(steps.map(r => r.selected), []);
    stacked("chart-coreset", x, sources, sources.map(s => steps.map(r => (r.selected && r.selected[s]) || 0)), "examples");
    const evalX = state.evals.map(r => r.step);
    const evalSources = keysOf(state.evals.map(r => r.sources), []);
    line("chart-heldout-loss", evalX, [["mean", state.evals.map(r => r.meanLoss)],
      ...evalSources.map(s => [s, state.evals.map(r => (r.sources[s] ? r.sources[s].loss : null))])], "loss");
    line("chart-heldout-accuracy", evalX, [["mean", state.evals.map(r => r.meanAccuracy)],
      ...evalSources.map(s => [s, state.evals.map(r => (r.sources[s] ? r.sources[s].accuracy : null))])], "exact match");
    drawTrainers();
    drawEvents();
    drawCheckpoints();
  }

  function drawOverview() {
    const last = state.steps[state.steps.length - 1];
    const status = state.status;
    const total = status && status.totalSteps ? status.totalSteps : null;
    const step = last ? last.step : (status ? status.step : 0);
    $("state").textContent = status ? status.state : "connecting";
    $("step").textContent = total ? `${step} / ${total}` : String(step);
    $("generation").textContent = last ? String(last.generation) : "–";
    $("throughput").textContent = last ? last.samplesPerSecond.toFixed(1) : "–";
    $("eta").textContent = eta(step, total, status);
    $("trainers").textContent = last && last.ranks ? String(last.ranks.length) : "–";
    $("freshness").textContent = state.lastRowAt ? new Date(state.lastRowAt).toLocaleTimeString() : "–";
    const error = $("error");
    error.hidden = !(status && status.error);
    error.textContent = status && status.error ? `error: ${status.error}` : "";
  }

  // From the pace of the last 50 steps on the run's own clock (elapsedSeconds).
  function eta(step, total, status) {
    if (!total || !status || status.state !== "running") return "–";
    const recent = state.steps.slice(-50);
    if (recent.length < 2) return "–";
    const perStep = (recent[recent.length - 1].elapsedSeconds - recent[0].elapsedSeconds) / (recent.length - 1);
    if (!(perStep > 0)) return "–";
    const seconds = Math.max(0, (total - step) * perStep);
    return seconds < 90 ? `${seconds.toFixed(0)} s` : seconds < 5400 ? `${(seconds / 60).toFixed(1)} min` : `${(seconds / 3600).toFixed(1)} h`;
  }

  // The trainers in the run over time: the ranks that reported each step.
  function drawTrainers() {
    const steps = state.steps.filter(r => r.ranks);
    line("chart-trainers", steps.map(r => r.step), [["trainers", steps.map(r => r.ranks.length)]], "trainers", true);
  }

  function drawEvents() {
    const body = $("membership").tBodies[0];
    body.replaceChildren(...state.events.map(e => {
      switch (e.kind) {
        case "membership": return tableRow([e.step, e.change, e.generation, `${e.node} (ranks ${e.ranks.join(", ")})`, e.trainers, e.reason], e.change);
        case "restart": return tableRow([e.step, "trainer restarted", "", `rank ${e.rank}`, "", e.reason], "lost");
        case "recovery": return tableRow([e.step, `recovered from ${e.source}`, e.generation, e.from, "", `${e.seconds.toFixed(2)} s`], "joined");
        default: return tableRow([e.fromStep, `run restarted (failure ${e.failure})`, "", "", "", e.error], "lost");
      }
    }));
  }

  function drawCheckpoints() {
    const now = state.steps.length > 0 ? state.steps[state.steps.length - 1].elapsedSeconds : 0;
    $("checkpoints").tBodies[0].replaceChildren(...state.checkpoints.map(c => tableRow([
      c.step, c.path,
      c.bytes !== undefined ? `${(c.bytes / 1048576).toFixed(2)} MiB` : "",
      c.pauseSeconds !== undefined ? `${(c.pauseSeconds * 1000).toFixed(0)} ms` : "",
      c.elapsedSeconds !== undefined ? `${c.elapsedSeconds.toFixed(1)} s` : "",
      c.elapsedSeconds !== undefined && status() === "running" ? `${Math.max(0, now - c.elapsedSeconds).toFixed(0)} s` : ""])));
  }

  function status() { return state.status ? state.status.state : ""; }

  function tableRow(cells, cls) {
    const tr = document.createElement("tr");
    for (const value of cells) {
      const td = document.createElement("td");
      td.textContent = value === null || value === undefined ? "" : String(value);
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }

  function keysOf(objects, preferred) {
    const seen = new Set();
    for (const o of objects) if (o) for (const k of Object.keys(o)) seen.add(k);
    return [...preferred.filter(k => seen.has(k)), ...[...seen].filter(k => !preferred.includes(k)).sort()];
  }

  // A stacked chart: each series is drawn as the running total up to it, largest first, so every band shows.
  function stacked(id, x, labels, columns, unit) {
    const totals = [];
    let running = x.map(() => 0);
    for (const column of columns) {
      running = running.map((v, i) => v + column[i]);
      totals.push(running);
    }
    const series = labels.map((label, i) => [label, totals[i]]).reverse();
    line(id, x, series, unit, false, true);
  }

  function line(id, x, series, unit = "", stepped = false, filled = false) {
    const element = $(id);
    if (x.length === 0) {
      if (!charts.has(id) && !element.querySelector(".empty")) {
        const note = document.createElement("div");
        note.className = "empty";
        note.textContent = "no data yet";
        element.appendChild(note);
      }
      return;
    }
    const key = series.map(s => s[0]).join("\u0001");
    const data = [Float64Array.from(x), ...series.map(s => s[1].map(v => (v === null || v === undefined ? null : v)))];
    const existing = charts.get(id);
    if (existing && existing.key === key) {
      existing.plot.setData(data);
      return;
    }
    if (existing) existing.plot.destroy();
    element.replaceChildren();
    const width = Math.max(320, element.clientWidth || 560);
    const plot = new uPlot({
      width,
      height: 240,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, { label: unit, size: 64, values: (u, splits) => splits.map(tick) }],
      series: [{ label: "step" }, ...series.map((s, i) => ({
        label: s[0],
        stroke: palette[i % palette.length],
        width: 1.5,
        fill: filled ? palette[i % palette.length] + "99" : undefined,
        paths: stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
        spanGaps: true,
      }))],
    }, data, element);
    charts.set(id, { plot, key });
  }

  // Small values (a learning rate) keep their digits; others as uPlot would write them.
  function tick(v) {
    if (v === null) return "";
    const a = Math.abs(v);
    return a !== 0 && (a < 0.01 || a >= 1e6) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
  }

  window.addEventListener("resize", () => {
    for (const [id, { plot }] of charts) plot.setSize({ width: Math.max(320, $(id).clientWidth), height: 240 });
  });

  start().catch(e => {
    $("state").textContent = "error";
    $("error").hidden = false;
    $("error").textContent = `the dashboard could not load its runs: ${e}`;
  });
})();
