// kubetune ui: the page. Plain JavaScript, no build step; charts by uPlot (vendored beside it).
// Views: #/jobs (list), #/jobs/NS/NAME (one job), #/new (create from YAML), #/experiments
// (list), #/experiments/NS/NAME (one experiment: its trials and charts).
// Live data comes from the server's event streams (/api/events, /api/experiments/events,
// .../events, .../logs/stream).
"use strict";

(() => {
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const STATES = ["queued", "created", "running", "restarting", "succeeded", "failed", "suspended"];
  const MAX_LOG_LINES = 10000;
  const view = document.getElementById("view");
  let leaving = []; // run when the view changes: close streams, drop charts, stop timers

  // --- small helpers -------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // Replaces el's children; nested arrays are flattened, null/false left out, text made nodes.
  function fill(el, ...children) {
    el.replaceChildren(...h("div", {}, ...children).childNodes);
  }

  async function api(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = { error: text };
    }
    if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    return data;
  }

  // The corner badge: "live" while the view's update streams are open, "reconnecting" while
  // one is down (the browser retries by itself), hidden on views without streams.
  const live = document.getElementById("live");
  let streams = 0;
  let openStreams = 0;
  function showLive() {
    live.hidden = streams === 0;
    live.textContent = openStreams === streams ? "live" : "reconnecting…";
    live.classList.toggle("on", openStreams === streams);
  }

  // An event stream for the current view; closed when the view changes.
  function stream(path, handlers) {
    const source = new EventSource(path);
    let open = false;
    let closed = false;
    const setOpen = (value) => {
      if (value !== open) {
        open = value;
        openStreams += value ? 1 : -1;
      }
      showLive();
    };
    streams += 1;
    source.onopen = () => setOpen(true);
    source.onerror = () => setOpen(false);
    for (const [event, handle] of Object.entries(handlers)) {
      source.addEventListener(event, (e) => handle(JSON.parse(e.data)));
    }
    const close = () => {
      if (closed) return;
      closed = true;
      source.close();
      streams -= 1;
      setOpen(false);
    };
    leaving.push(close);
    showLive();
    return close;
  }

  function number(value) {
    if (typeof value !== "number" || !isFinite(value)) return "–";
    if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(2);
    return String(Number(value.toPrecision(4)));
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
    seconds = Math.max(0, Math.round(seconds));
    const d = Math.floor(seconds / 86400), hr = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function age(iso) {
    const t = Date.parse(iso || "");
    return isNaN(t) ? "–" : duration((Date.now() - t) / 1000);
  }

  function fraction(job) {
    const p = job.progress || {};
    if (job.state === "succeeded") return 1;
    if (typeof p.step === "number" && typeof p.total_steps === "number" && p.total_steps > 0) {
      return Math.min(1, p.step / p.total_steps);
    }
    if (typeof p.progress_percentage === "number") return p.progress_percentage / 100;
    return 0;
  }

  function progressBar(job, id) {
    const p = job.progress || {};
    const f = fraction(job);
    const fill = h("div", { class: "fill" });
    fill.style.width = `${(f * 100).toFixed(1)}%`;
    const label = typeof p.step === "number" ? `${p.step}/${p.total_steps ?? "?"}` : job.state === "succeeded" ? "done" : "–";
    return h(
      "div",
      { class: `bar ${job.state}`, id, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
        "aria-valuenow": Math.round(f * 100), "data-step": typeof p.step === "number" ? p.step : "" },
      fill,
      h("span", { class: "label" }, label),
    );
  }

  function badge(state) {
    return h("span", { class: `badge ${state}` }, state);
  }

  function jobHref(job) {
    return `#/jobs/${encodeURIComponent(job.namespace)}/${encodeURIComponent(job.name)}`;
  }

  function jobPath(namespace, name) {
    return `/api/jobs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  }

  function experimentHref(experiment) {
    return `#/experiments/${encodeURIComponent(experiment.namespace)}/${encodeURIComponent(experiment.name)}`;
  }

  function experimentPath(namespace, name) {
    return `/api/experiments/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  }

  function notice(text, kind = "info") {
    const el = h("div", { class: `notice ${kind}`, role: "status" }, text);
    view.prepend(el);
    setTimeout(() => el.remove(), 8000);
  }

  function setNav(name) {
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("current", a.dataset.nav === name);
  }

  // --- the job list --------------------------------------------------------------------------

  const COLUMNS = [
    { key: "name", title: "Name", value: (j) => j.name },
    { key: "namespace", title: "Namespace", value: (j) => j.namespace },
    { key: "state", title: "State", value: (j) => STATES.indexOf(j.state) },
    { key: "size", title: "Workers × procs", value: (j) => (j.workers || 0) * 1000 + (Number(j.procs_per_worker) || 0) },
    { key: "progress", title: "Progress", value: fraction },
    { key: "epoch", title: "Epoch", value: (j) => (j.progress || {}).epoch ?? -1 },
    { key: "loss", title: "Loss", value: (j) => (j.progress || {}).loss ?? Infinity },
    { key: "eta", title: "ETA", value: (j) => (j.progress || {}).eta_seconds ?? Infinity },
    { key: "age", title: "Age", value: (j) => -Date.parse(j.creation_time || 0) || 0 },
  ];
  const listState = { sort: "age", direction: 1, filter: "", state: "" };

  // The first cells of a job's or an experiment's row: its name (a link), namespace and state.
  function nameCells(item, href) {
    return [
      h("td", {}, h("a", { href }, item.name)),
      h("td", {}, item.namespace),
      h("td", { class: "state" }, badge(item.state),
        item.reason || item.message ? h("div", { class: "reason", title: item.message }, item.reason || item.message) : null),
    ];
  }

  function jobRow(job) {
    const p = job.progress || {};
    const running = job.state === "running" || job.state === "restarting";
    return h(
      "tr",
      { "data-job": `${job.namespace}/${job.name}`, "data-state": job.state },
      nameCells(job, jobHref(job)),
      h("td", {}, job.workers ? `${job.workers} × ${job.procs_per_worker ?? 1}` : "–"),
      h("td", { class: "progress" }, progressBar(job)),
      h("td", { class: "num" }, number(p.epoch)),
      h("td", { class: "num" }, number(p.loss)),
      h("td", { class: "num" }, running ? duration(p.eta_seconds) : "–"),
      h("td", { class: "num", title: job.creation_time || "" }, age(job.creation_time)),
    );
  }

  function showJobs() {
    setNav("jobs");
    let jobs = null;
    const tbody = h("tbody");
    const count = h("span", { class: "muted", id: "job-count" });
    const head = h("tr");
    const filter = h("input", { type: "search", id: "job-filter", placeholder: "filter by name, namespace, state or reason", value: listState.filter });
    const stateSelect = h("select", { id: "state-filter" }, h("option", { value: "" }, "every state"), STATES.map((s) => h("option", { value: s }, s)));
    stateSelect.value = listState.state;

    function draw() {
      fill(head,
        ...COLUMNS.map((c) =>
          h("th", { "data-sort": c.key, class: listState.sort === c.key ? (listState.direction > 0 ? "sorted up" : "sorted down") : "",
            onclick: () => {
              listState.direction = listState.sort === c.key ? -listState.direction : 1;
              listState.sort = c.key;
              draw();
            } }, c.title),
        ),
      );
      if (jobs === null) {
        fill(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted" }, "loading…")));
        return;
      }
      const words = listState.filter.toLowerCase().split(/\s+/).filter(Boolean);
      const shown = jobs.filter((j) => {
        if (listState.state && j.state !== listState.state) return false;
        const text = `${j.name} ${j.namespace} ${j.state} ${j.reason} ${j.message}`.toLowerCase();
        return words.every((w) => text.includes(w));
      });
      const column = COLUMNS.find((c) => c.key === listState.sort) || COLUMNS[0];
      shown.sort((a, b) => {
        const x = column.value(a), y = column.value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * listState.direction;
      });
      count.textContent = `${shown.length} of ${jobs.length} job${jobs.length === 1 ? "" : "s"}`;
      if (!jobs.length) {
        fill(tbody, h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty" },
          "No jobs yet. Start one under New job, with `kubetune train JOB.yaml`, or with TrainingClient().train(...).")));
        return;
      }
      fill(tbody, ...shown.map(jobRow));
    }

    filter.addEventListener("input", () => { listState.filter = filter.value; draw(); });
    stateSelect.addEventListener("change", () => { listState.state = stateSelect.value; draw(); });
    fill(view,
      h("div", { class: "toolbar" }, h("h1", {}, "Jobs"), filter, stateSelect, count),
      h("table", { class: "jobs", id: "jobs" }, h("thead", {}, head), tbody),
    );
    draw();
    stream("/api/events", { jobs: (data) => { jobs = data.jobs; draw(); } });
    const timer = setInterval(() => jobs && draw(), 5000); // ages and ETAs move on
    leaving.push(() => clearInterval(timer));
  }

  // --- charts ----------------------------------------------------------------------------------

  // Aligned uPlot data from logged records: steps, then each series' value at each step.
  function seriesData(records, keys) {
    const byStep = new Map();
    for (const r of records) {
      if (typeof r.step !== "number") continue;
      let row = byStep.get(r.step);
      for (const key of keys) {
        if (typeof r[key] === "number") {
          if (!row) { row = {}; byStep.set(r.step, row); }
          row[key] = r[key];
        }
      }
    }
    const steps = [...byStep.keys()].sort((a, b) => a - b);
    return [steps, ...keys.map((key) => steps.map((s) => byStep.get(s)[key] ?? null))];
  }

  const STEP_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 2.5e4, 5e4, 1e5, 2e5, 5e5, 1e6];

  // The uPlot series of one line: `points: true` marks each value, `only: "points"` draws a
  // scatter, `paths: "stepped"` a step line.
  function seriesOptions(s, color) {
    const options = { label: s.label, stroke: color, width: 1.5, spanGaps: true, value: (u, v) => number(v) };
    if (s.only === "points") {
      options.points = { show: true, size: 7, fill: color };
      options.paths = () => null;
    } else {
      options.points = { show: s.points === true ? true : undefined };
      if (s.paths === "stepped") options.paths = uPlot.paths.stepped({ align: 1 });
    }
    return options;
  }

  // A uPlot chart of `series` over x (steps unless `x` says otherwise: its label, incrs (tick
  // spacing, null: uPlot's own), values (tick labels), range, and value (the cursor's text)).
  function makeChart(container, title, series, x = {}) {
    const colors = ["#2f6fb3", "#d9822b", "#3a9a5b", "#9b59b6"];
    const xAxis = { label: x.label || "step" };
    if (x.incrs !== null) xAxis.incrs = x.incrs || STEP_INCRS;
    if (x.values) xAxis.values = x.values;
    const options = {
      title,
      width: Math.max(300, container.clientWidth || 600),
      height: 240,
      scales: { x: x.range ? { time: false, range: x.range } : { time: false } },
      axes: [xAxis, { size: 64, values: (u, splits) => splits.map(number) }],
      series: [
        x.value ? { label: xAxis.label, value: x.value } : { label: xAxis.label },
        ...series.map((s, i) => seriesOptions(s, s.stroke || colors[i % colors.length])),
      ],
    };
    const chart = new uPlot(options, [[], ...series.map(() => [])], container);
    const resize = () => chart.setSize({ width: Math.max(300, container.clientWidth), height: 240 });
    window.addEventListener("resize", resize);
    leaving.push(() => { window.removeEventListener("resize", resize); chart.destroy(); });
    return chart;
  }

  // A condition in a timeline: a job's (last_transition_time) or a Katib Experiment's (lastTransitionTime).
  function conditionItem(c) {
    return h("li", { class: c.status === "True" ? "on" : "off" },
      h("span", { class: "when" }, c.last_transition_time || c.lastTransitionTime || ""), " ", h("strong", {}, c.type),
      c.status === "True" ? "" : " (no longer)", c.reason ? ` — ${c.reason}` : "", c.message ? h("div", { class: "muted" }, c.message) : null);
  }

  // --- one job ---------------------------------------------------------------------------------

  function showJob(namespace, name) {
    setNav("jobs");
    const path = jobPath(namespace, name);
    const title = h("h1", {}, name);
    const stateLine = h("div", { class: "state-line", id: "job-state" });
    const deleteButton = h("button", { class: "danger", id: "delete", onclick: () => confirmDelete(namespace, name) }, "Delete…");
    const summary = h("div", { id: "job-summary" });
    const lossBox = h("div", { class: "chart", id: "loss-chart", "data-points": 0 });
    const lrBox = h("div", { class: "chart", id: "lr-chart", "data-points": 0 });
    const evalBox = h("div", { id: "eval-metrics" });
    const conditionsBox = h("ol", { class: "timeline", id: "conditions" });
    const outputsBox = h("div", { id: "outputs" });
    const metricsBox = h("div", { id: "metrics" });
    const specBox = h("pre", { class: "code", id: "spec" });
    const objectsBox = h("div", { id: "objects" });
    const objectsSection = h("section", { hidden: true }, h("h2", {}, "Kubernetes objects"), objectsBox);
    const logs = logPanel(path);

    fill(view,
      h("div", { class: "toolbar" }, h("a", { href: "#/jobs", class: "back" }, "← Jobs"), title,
        h("span", { class: "muted" }, namespace), h("span", { class: "spacer" }), deleteButton),
      stateLine,
      h("section", {}, h("h2", {}, "Progress"), summary),
      h("section", { class: "charts" }, lossBox, lrBox),
      h("section", {}, h("h2", {}, "Evaluation"), evalBox),
      h("div", { class: "columns" },
        h("section", {}, h("h2", {}, "Conditions"), conditionsBox),
        h("section", {}, h("h2", {}, "Outputs"), outputsBox, metricsBox)),
      h("section", {}, h("h2", {}, "Logs"), logs.element),
      h("section", {}, h("h2", {}, "Job spec"), specBox),
      objectsSection,
    );

    const lossChart = makeChart(lossBox, "Loss", [{ label: "train loss" }, { label: "eval loss", points: true }]);
    const lrChart = makeChart(lrBox, "Learning rate", [{ label: "learning rate" }]);
    let records = [];
    let drawPending = false;
    function drawCharts() {
      if (drawPending) return;
      drawPending = true;
      setTimeout(() => {
        drawPending = false;
        const loss = seriesData(records, ["loss", "eval_loss"]);
        lossChart.setData(loss);
        lossBox.dataset.points = loss[1].filter((v) => v !== null).length;
        const lr = seriesData(records, ["learning_rate"]);
        lrChart.setData(lr);
        lrBox.dataset.points = lr[0].length;
        drawEval();
      }, 200);
    }

    function drawEval() {
      const evals = records.filter((r) => Object.keys(r).some((k) => k.startsWith("eval_")));
      if (!evals.length) {
        fill(evalBox, h("p", { class: "muted" }, "No evaluation logged yet."));
        return;
      }
      // The metrics, not how long evaluating took.
      const metric = (k) => k.startsWith("eval_") && !/_runtime$|_per_second$/.test(k);
      const keys = [...new Set(evals.flatMap((r) => Object.keys(r).filter(metric)))];
      fill(evalBox,
        ...[h("table", { class: "kv", id: "eval-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "step"), keys.map((k) => h("th", {}, k.slice(5))))),
          h("tbody", {}, evals.slice(-10).map((r) => h("tr", {}, h("td", {}, r.step), keys.map((k) => h("td", { class: "num" }, number(r[k])))))),
        ),
        evals.length > 10 ? h("p", { class: "muted" }, `the last 10 of ${evals.length} evaluations`) : null].filter(Boolean),
      );
    }

    function drawJob(job) {
      fill(stateLine, badge(job.state), job.reason ? h("strong", {}, job.reason) : null, job.message ? h("span", {}, job.message) : null);
      const p = job.progress || {};
      const cells = [
        ["step", typeof p.step === "number" ? `${p.step} of ${p.total_steps ?? "?"}` : "–"],
        ["epoch", number(p.epoch)], ["loss", number(p.loss)], ["learning rate", number(p.learning_rate)],
        ["samples/s", number(p.samples_per_second)], ["ETA", job.state === "running" ? duration(p.eta_seconds) : "–"],
        ["trainer", p.status || "–"], ["workers × procs", job.workers ? `${job.workers} × ${job.procs_per_worker ?? 1}` : "–"],
        ["restarts", job.restarts], ["age", age(job.creation_time)],
        ["started", job.start_time || "–"], ["completed", job.completion_time || "–"],
      ];
      fill(summary, progressBar(job, "job-progress"),
        h("dl", { class: "facts" }, cells.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
      fill(conditionsBox, ...job.conditions.map(conditionItem));
      const outputs = job.outputs || [];
      fill(outputsBox, ...[
        job.output_dir ? h("p", {}, "Output directory: ", h("code", {}, job.output_dir)) : h("p", { class: "muted" }, "No output directory."),
        outputs.length ? h("table", { class: "kv", id: "outputs-table" }, h("tbody", {}, outputs.map((o) =>
          h("tr", { "data-output": o.name, class: o.exists === false ? "missing" : "" }, h("td", {}, o.what), h("td", {}, h("code", {}, o.path)),
            h("td", {}, o.exists === null ? "in the job's volume" : o.exists ? "written" : "not yet"))))) : null,
        outputs.some((o) => o.name === "loss_curve.png" && o.exists)
          ? h("img", { class: "curve", alt: "loss curve written by the trainer", src: `${path}/outputs/loss_curve.png` }) : null,
      ].filter(Boolean));
      const metrics = job.metrics;
      fill(metricsBox, metrics
        ? h("details", { open: true }, h("summary", {}, "metrics.json"), h("table", { class: "kv", id: "metrics-table" }, h("tbody", {},
            Object.entries(metrics).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, typeof v === "number" ? number(v) : JSON.stringify(v)))))))
        : "");
      specBox.textContent = job.spec ? JSON.stringify(job.spec, null, 2) : "(no spec)";
      objectsSection.hidden = !job.objects;
      if (job.objects) {
        fill(objectsBox, ...job.objects.map((o) =>
          h("details", {}, h("summary", {}, `${o.kind} ${(o.metadata || {}).name || ""}`), h("pre", { class: "code" }, JSON.stringify(o, null, 2)))));
      }
      logs.setSources(job.log_sources || []);
    }

    stream(`${path}/events`, {
      job: drawJob,
      history: (data) => {
        records = data.reset ? data.records : records.concat(data.records);
        drawCharts();
      },
      gone: () => {
        location.hash = "#/jobs";
        setTimeout(() => notice(`job ${namespace}/${name} is gone`), 0);
      },
    });
    drawEval();
  }

  function logPanel(path) {
    let lines = [];
    let sources = [];
    let stop = null;
    const select = h("select", { id: "log-source" }, h("option", { value: "" }, "every source"));
    const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
    const pre = h("pre", { class: "logs", id: "logs" });
    const status = h("span", { class: "muted", id: "log-status" });

    function visible(line) {
      return !select.value || line[0] === select.value;
    }
    function text(line) {
      return `[${line[0]}] ${line[1]}\n`;
    }
    function redraw() {
      pre.textContent = lines.filter(visible).map(text).join("");
      pre.scrollTop = pre.scrollHeight;
    }
    function add(newLines) {
      lines = lines.concat(newLines);
      if (lines.length > MAX_LOG_LINES) {
        lines = lines.slice(-MAX_LOG_LINES);
        redraw();
        return;
      }
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      pre.append(newLines.filter(visible).map(text).join(""));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    function start() {
      lines = [];
      redraw();
      status.textContent = "following";
      stop = stream(`${path}/logs/stream`, {
        lines: (data) => add(data.lines),
        end: () => { status.textContent = "the job has ended: every line is shown"; stop && stop(); stop = null; },
      });
    }
    follow.addEventListener("change", () => {
      if (follow.checked && !stop) start();
      if (!follow.checked && stop) { stop(); stop = null; status.textContent = "paused"; }
    });
    select.addEventListener("change", redraw);
    start();
    return {
      element: h("div", {}, h("div", { class: "toolbar small" }, select, h("label", {}, follow, " follow"), status), pre),
      setSources(names) {
        if (names.join("\n") === sources.join("\n")) return;
        sources = names;
        const chosen = select.value;
        fill(select, h("option", { value: "" }, "every source"), names.map((n) => h("option", { value: n }, n)));
        select.value = names.includes(chosen) ? chosen : "";
      },
    };
  }

  const DELETING = {
    job: { path: jobPath, back: "#/jobs",
      text: "Its processes stop, and its files, outputs included, are removed." },
    experiment: { path: experimentPath, back: "#/experiments",
      text: "Its search and running trials stop; its trials, their jobs and its results are removed." },
  };

  function confirmDelete(namespace, name, kind = "job") {
    const what = DELETING[kind];
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = `Delete ${kind} ${namespace}/${name}? ${what.text}`;
    dialog.returnValue = "";
    dialog.onclose = async () => {
      if (dialog.returnValue !== "ok") return;
      try {
        await api(what.path(namespace, name), { method: "DELETE" });
        location.hash = what.back;
        setTimeout(() => notice(`${kind} ${namespace}/${name} deleted`), 0);
      } catch (e) {
        notice(`could not delete ${namespace}/${name}: ${e.message}`, "error");
      }
    };
    dialog.showModal();
  }

  // --- a new job -------------------------------------------------------------------------------

  function showNew() {
    setNav("new");
    const text = h("textarea", { id: "job-yaml", rows: 22, spellcheck: "false",
      placeholder: "name: my-job\nmodel_provider_parameters: {model_uri: ..., transformer_type: AutoModelForSequenceClassification}\ndataset_provider_parameters: {local: {path: ...}}\ntrainer_parameters:\n  training_parameters: {output_dir: out, num_train_epochs: 1}" });
    const file = h("input", { type: "file", id: "job-file", accept: ".yaml,.yml,text/yaml" });
    const error = h("pre", { class: "error", id: "create-error", hidden: true });
    const button = h("button", { id: "create", class: "primary" }, "Create job");
    let filename = "";
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (!chosen) return;
      filename = chosen.name;
      text.value = await chosen.text();
    });
    text.addEventListener("input", () => { if (file.value) { file.value = ""; filename = ""; } });
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.hidden = true;
      try {
        const created = await api("/api/jobs", { method: "POST", body: { yaml: text.value, filename } });
        location.hash = jobHref(created);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    fill(view,
      h("h1", {}, "New job"),
      h("p", {}, "Paste a job YAML (the format of ", h("code", {}, "kubetune train JOB.yaml"),
        ") or choose a file. It is checked as the command line checks it; relative paths are relative to the folder ",
        h("code", {}, "kubetune ui"), " was started in."),
      h("div", { class: "toolbar small" }, file),
      text,
      h("div", { class: "toolbar small" }, button),
      error,
    );
  }

  // --- experiments -----------------------------------------------------------------------------

  const TRIAL_ENDED = ["Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable"];

  function experimentRow(e) {
    return h(
      "tr",
      { "data-experiment": `${e.namespace}/${e.name}`, "data-state": e.state },
      nameCells(e, experimentHref(e)),
      h("td", { class: "num trials" }, `${e.trials_ended}/${e.max_trial_count ?? "?"}`,
        e.trials_running ? h("span", { class: "muted" }, ` · ${e.trials_running} running`) : null),
      h("td", {}, `${e.objective_type} ${e.objective_metric_name}`),
      h("td", { class: "num best" }, number(e.best_objective),
        e.best_trial ? h("div", { class: "reason" }, e.best_trial) : null),
      h("td", {}, e.algorithm_name),
      h("td", { class: "num", title: e.creation_time || "" }, age(e.creation_time)),
    );
  }

  function showExperiments() {
    setNav("experiments");
    const heads = ["Name", "Namespace", "State", "Trials ended", "Objective", "Best", "Algorithm", "Age"];
    let answer = null;
    const tbody = h("tbody");
    const count = h("span", { class: "muted", id: "experiment-count" });

    function draw() {
      const empty = (text) => fill(tbody, h("tr", {}, h("td", { colspan: heads.length, class: "empty" }, text)));
      if (answer === null) return empty("loading…");
      const list = answer.experiments;
      count.textContent = `${list.length} experiment${list.length === 1 ? "" : "s"}`;
      if (!answer.available) return empty(answer.message);
      if (!list.length) {
        return empty("No experiments yet. Start a hyperparameter search with `kubetune tune EXPERIMENT.yaml` or KatibClient().tune(...).");
      }
      fill(tbody, ...list.map(experimentRow));
    }

    fill(view,
      h("div", { class: "toolbar" }, h("h1", {}, "Experiments"), count),
      h("table", { class: "listing", id: "experiments" }, h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))), tbody),
    );
    draw();
    stream("/api/experiments/events", { experiments: (data) => { answer = data; draw(); } });
    const timer = setInterval(() => answer && draw(), 5000); // ages move on
    leaving.push(() => clearInterval(timer));
  }

  // A parameter's value as a chart's x: a number, or the index of a category.
  function parameterAxis(parameter) {
    const space = parameter.feasibleSpace || {};
    if (parameter.parameterType === "categorical" || parameter.parameterType === "discrete") {
      const list = (space.list || []).map(String);
      const numeric = parameter.parameterType === "discrete" && list.every((v) => isFinite(Number(v)));
      if (!numeric) {
        return {
          x: (value) => (list.indexOf(String(value)) >= 0 ? list.indexOf(String(value)) : null),
          options: { label: parameter.name, incrs: [1], range: [-0.5, Math.max(0.5, list.length - 0.5)],
            values: (u, splits) => splits.map((i) => list[i] ?? ""), value: (u, i) => list[i] ?? "–" },
        };
      }
    }
    const low = Number(space.min), high = Number(space.max);
    const range = isFinite(low) && isFinite(high) && high > low ? [low - (high - low) * 0.03, high + (high - low) * 0.03] : undefined;
    return {
      x: (value) => (value === null || value === undefined || !isFinite(Number(value)) ? null : Number(value)),
      options: { label: parameter.name, incrs: null, range, values: (u, splits) => splits.map(number), value: (u, v) => number(v) },
    };
  }

  function feasibleText(parameter) {
    const space = parameter.feasibleSpace || {};
    if (space.list) return space.list.join(", ");
    const step = space.step ? `, step ${space.step}` : "";
    const distribution = space.distribution ? ` (${space.distribution})` : "";
    return `${space.min ?? "?"} … ${space.max ?? "?"}${step}${distribution}`;
  }

  function isBetter(a, b, type) {
    return b === null || (type === "minimize" ? a < b : a > b);
  }

  function valueText(text) {
    return text !== "" && isFinite(Number(text)) ? number(Number(text)) : text;
  }

  function showExperiment(namespace, name) {
    setNav("experiments");
    const path = experimentPath(namespace, name);
    const stateLine = h("div", { class: "state-line", id: "experiment-state" });
    const facts = h("div", { id: "experiment-summary" });
    const objectiveBox = h("div", { class: "chart", id: "objective-chart", "data-points": 0 });
    const parameterBoxes = h("div", { class: "charts", id: "parameter-charts" });
    const trialsBox = h("div", { id: "trials-box" });
    const spaceBox = h("div", { id: "search-space" });
    const conditionsBox = h("ol", { class: "timeline", id: "conditions" });
    const outputsBox = h("div", { id: "experiment-outputs" });
    const outputsSection = h("section", { hidden: true }, h("h2", {}, "Results table and plots"), outputsBox);
    const deleteButton = h("button", { class: "danger", id: "delete", onclick: () => confirmDelete(namespace, name, "experiment") }, "Delete…");

    fill(view,
      h("div", { class: "toolbar" }, h("a", { href: "#/experiments", class: "back" }, "← Experiments"), h("h1", {}, name),
        h("span", { class: "muted" }, namespace), h("span", { class: "spacer" }), deleteButton),
      stateLine,
      h("section", {}, h("h2", {}, "Search"), facts),
      h("section", {}, h("h2", {}, "Trials"), trialsBox),
      h("section", {}, h("h2", {}, "Objective per trial"), objectiveBox),
      h("section", {}, h("h2", {}, "Each parameter against the objective"), parameterBoxes),
      h("div", { class: "columns" },
        h("section", {}, h("h2", {}, "Search space"), spaceBox),
        h("section", {}, h("h2", {}, "Conditions"), conditionsBox)),
      outputsSection,
    );

    let objectiveChart = null;
    let parameterCharts = null; // [{ parameter, axis, chart, box }], made once the space is known

    function drawCharts(e) {
      const metric = e.objective_metric_name;
      if (!objectiveChart) {
        objectiveChart = makeChart(objectiveBox, `${metric} per trial`,
          [{ label: metric, only: "points" }, { label: `best so far (${e.objective_type})`, stroke: "#3a9a5b", paths: "stepped" }],
          { label: "trial", value: (u, v) => (v === null || v === undefined ? "–" : `#${v}`) });
      }
      let best = null;
      const xs = [], ys = [], bests = [];
      e.trials.forEach((t, i) => {
        xs.push(i + 1);
        ys.push(typeof t.objective === "number" ? t.objective : null);
        if (t.status === "Succeeded" && typeof t.objective === "number" && isBetter(t.objective, best, e.objective_type)) best = t.objective;
        bests.push(best);
      });
      objectiveChart.setData([xs, ys, bests]);
      objectiveBox.dataset.points = ys.filter((v) => v !== null).length;

      if (!parameterCharts) {
        parameterCharts = e.parameters.map((parameter) => {
          const box = h("div", { class: "chart param-chart", "data-param": parameter.name, "data-points": 0 });
          parameterBoxes.append(box);
          const axis = parameterAxis(parameter);
          const chart = makeChart(box, `${metric} against ${parameter.name}`,
            [{ label: metric, only: "points" }, { label: "best trial", only: "points", stroke: "#3a9a5b" }], axis.options);
          return { parameter, axis, chart, box };
        });
      }
      for (const { parameter, axis, chart, box } of parameterCharts) {
        const points = e.trials
          .map((t) => ({ x: axis.x(t.values[parameter.name]), y: t.objective, best: t.best }))
          .filter((p) => p.x !== null && typeof p.y === "number")
          .sort((a, b) => a.x - b.x);
        chart.setData([points.map((p) => p.x), points.map((p) => p.y), points.map((p) => (p.best ? p.y : null))]);
        box.dataset.points = points.length;
      }
    }

    function drawTrials(e) {
      const parameters = e.parameters.map((p) => p.name);
      const metricNames = [...new Set(e.trials.flatMap((t) => Object.keys(t.metrics || {})))].filter((m) => m !== e.objective_metric_name);
      const ended = e.trials.filter((t) => TRIAL_ENDED.includes(t.status)).length;
      if (!e.trials.length) {
        fill(trialsBox, h("p", { class: "muted", id: "no-trials" }, "No trials yet."));
        return;
      }
      fill(trialsBox, h("table", { class: "kv trials", id: "trials", "data-ended": ended, "data-count": e.trials.length },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "trial"), h("th", {}, "status"),
          parameters.map((p) => h("th", { class: "param" }, p)), h("th", {}, e.objective_metric_name),
          metricNames.map((m) => h("th", {}, m)), h("th", {}, "took"))),
        h("tbody", {}, e.trials.map((t, i) => {
          const took = t.start_time && t.completion_time ? (Date.parse(t.completion_time) - Date.parse(t.start_time)) / 1000 : null;
          return h("tr", { "data-trial": t.name, "data-status": t.status, class: t.best ? "best" : "", title: t.message || "" },
            h("td", { class: "num" }, i + 1),
            h("td", {}, t.job ? h("a", { href: jobHref({ namespace: e.namespace, name: t.name }), title: "the trial's job" }, t.name) : t.name,
              t.best ? h("span", { class: "tag" }, "best") : null),
            h("td", {}, badge(t.status.toLowerCase())),
            parameters.map((p) => h("td", { class: "num" }, valueText(t.values[p] ?? "–"))),
            h("td", { class: "num objective" }, number(t.objective)),
            metricNames.map((m) => h("td", { class: "num" }, valueText(((t.metrics || {})[m] || {}).latest ?? "–"))),
            h("td", { class: "num" }, took === null ? "–" : duration(took)));
        }))));
    }

    function drawExperiment(e) {
      fill(stateLine, badge(e.state), e.reason ? h("strong", {}, e.reason) : null, e.message ? h("span", {}, e.message) : null);
      const bestTrial = e.trials.find((t) => t.best);
      const cells = [
        ["objective", `${e.objective_type} ${e.objective_metric_name}${typeof e.objective_goal === "number" ? ` (goal ${number(e.objective_goal)})` : ""}`],
        ["algorithm", e.algorithm_name || "–"],
        ["trials ended", `${e.trials_ended} of ${e.max_trial_count ?? "?"}`],
        ["running", `${e.trials_running} (at most ${e.parallel_trial_count ?? "?"} at once)`],
        ["failed", `${e.trials_failed}${typeof e.max_failed_trial_count === "number" ? ` (at most ${e.max_failed_trial_count})` : ""}`],
        ["best", bestTrial ? `${number(bestTrial.objective)} (${bestTrial.name})` : "–"],
        ["age", age(e.creation_time)], ["started", e.start_time || "–"], ["completed", e.completion_time || "–"],
      ];
      fill(facts, h("dl", { class: "facts" }, cells.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
      fill(spaceBox, h("table", { class: "kv", id: "space-table" }, h("tbody", {}, e.parameters.map((p) =>
        h("tr", {}, h("td", {}, p.name), h("td", { class: "muted" }, p.parameterType), h("td", {}, feasibleText(p)))))));
      fill(conditionsBox, ...e.conditions.map(conditionItem));
      const outputs = Object.entries(e.outputs || {});
      outputsSection.hidden = !outputs.length;
      fill(outputsBox, outputs.length
        ? h("table", { class: "kv", id: "experiment-outputs-table" }, h("tbody", {}, outputs.map(([k, v]) => h("tr", {}, h("td", {}, k.replace(/_/g, " ")), h("td", {}, h("code", {}, v))))))
        : "");
      drawTrials(e);
      drawCharts(e);
    }

    stream(`${path}/events`, {
      experiment: drawExperiment,
      gone: () => {
        location.hash = "#/experiments";
        setTimeout(() => notice(`experiment ${namespace}/${name} is gone`), 0);
      },
    });
  }

  // --- routing ---------------------------------------------------------------------------------

  function route() {
    for (const leave of leaving.splice(0)) leave();
    document.getElementById("confirm").close();
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (parts[0] === "jobs" && parts.length === 3) showJob(parts[1], parts[2]);
    else if (parts[0] === "new") showNew();
    else if (parts[0] === "experiments" && parts.length === 3) showExperiment(parts[1], parts[2]);
    else if (parts[0] === "experiments") showExperiments();
    else showJobs();
  }

  window.addEventListener("hashchange", route);
  api("/api/info").then((info) => {
    document.getElementById("backend").textContent = `${info.backend} backend · kubetune ${info.version}`;
  }).catch((e) => notice(e.message, "error"));
  route();
})();
