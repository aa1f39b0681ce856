// The explorers of the flow matching notebooks, drawn by the browser: one ES module, plain JavaScript.
//
// Python (gen_models_utilities.widgets) sends three things: `spec` (the controls and what to draw),
// `arrays` (the data and the particles' start points) and `views` (what a trained network did, one
// entry per setting, stored with the notebook). Everything with a closed form is computed here, at
// any setting: the ring's exact marginal field, its conditional field per mode, exact classifier-free
// guidance on them, and the fixed-step solvers (the same steps as gen_models_utilities.solvers).
// A learned view that is not stored is asked of the kernel; without a kernel the widget says so.

// ------------------------------------------------------------------------------------------
// Exact fields: field(x, t, out) with x, out flat arrays [x0, y0, x1, y1, ...]

/** The marginal field u_t(x) for x0 ~ N(0, I) and x1 from equal Gaussians (std) at `centers` (flat). */
export function ringField(centers, std) {
  const n = centers.length / 2, s2 = std * std, logits = new Float64Array(n);
  return (x, t, out) => {
    const variance = (1 - t) * (1 - t) + t * t * s2, ratio = (t * s2 - (1 - t)) / variance;
    for (let i = 0; i < x.length; i += 2) {
      let top = -Infinity;
      for (let k = 0; k < n; k++) {        // w_k(x): softmax of -|x - t mu_k|^2 / (2 var_t)
        const dx = x[i] - t * centers[2 * k], dy = x[i + 1] - t * centers[2 * k + 1];
        logits[k] = -(dx * dx + dy * dy) / (2 * variance);
        if (logits[k] > top) top = logits[k];
      }
      let total = 0, u = 0, v = 0;
      for (let k = 0; k < n; k++) {        // sum_k w_k (mu_k + c_t / var_t (x - t mu_k))
        const w = Math.exp(logits[k] - top), cx = centers[2 * k], cy = centers[2 * k + 1];
        total += w;
        u += w * (cx + ratio * (x[i] - t * cx));
        v += w * (cy + ratio * (x[i + 1] - t * cy));
      }
      out[i] = u / total;
      out[i + 1] = v / total;
    }
    return out;
  };
}

/** v_u + w (v_c - v_u): classifier-free guidance of two fields. */
export function guidedField(unconditional, conditional, w) {
  let a = new Float64Array(0), b = a;
  return (x, t, out) => {
    if (a.length !== x.length) { a = new Float64Array(x.length); b = new Float64Array(x.length); }
    unconditional(x, t, a);
    conditional(x, t, b);
    for (let i = 0; i < x.length; i++) out[i] = a[i] + w * (b[i] - a[i]);
    return out;
  };
}

// ------------------------------------------------------------------------------------------
// Fixed-step solvers: the steps of solvers.py, evaluation for evaluation

export const SOLVERS = {euler: 1, midpoint: 2, heun: 2, rk4: 4};      // network evaluations per step

/** Paths from x0 (flat, 2N) over [0, 1] in nSteps equal steps: Float32Array ((nSteps + 1) * 2N). */
export function solve(field, x0, nSteps, method) {
  if (!(method in SOLVERS)) throw new Error(`unknown solver ${method}`);
  const n = x0.length, h = 1 / nSteps, path = new Float32Array((nSteps + 1) * n);
  const x = Float64Array.from(x0), y = new Float64Array(n);
  const k1 = new Float64Array(n), k2 = new Float64Array(n), k3 = new Float64Array(n), k4 = new Float64Array(n);
  const along = (k, a) => { for (let j = 0; j < n; j++) y[j] = x[j] + a * k[j]; return y; };
  path.set(x, 0);
  for (let i = 0; i < nSteps; i++) {
    const t = i * h;
    field(x, t, k1);
    if (method === "euler") {
      for (let j = 0; j < n; j++) x[j] += h * k1[j];
    } else if (method === "midpoint") {
      field(along(k1, 0.5 * h), t + 0.5 * h, k2);
      for (let j = 0; j < n; j++) x[j] += h * k2[j];
    } else if (method === "heun") {
      field(along(k1, h), t + h, k2);
      for (let j = 0; j < n; j++) x[j] += 0.5 * h * (k1[j] + k2[j]);
    } else {
      field(along(k1, 0.5 * h), t + 0.5 * h, k2);
      field(along(k2, 0.5 * h), t + 0.5 * h, k3);
      field(along(k3, h), t + h, k4);
      for (let j = 0; j < n; j++) x[j] += h / 6 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
    }
    path.set(x, (i + 1) * n);
  }
  return path;
}

/** Samples off every mode (farther than `reach` from each centre) and the count within reach of each. */
export function modeCounts(points, centers, reach) {
  const perMode = new Array(centers.length / 2).fill(0);
  let off = 0;
  for (let i = 0; i < points.length; i += 2) {
    let best = Infinity, nearest = 0;
    for (let k = 0; k < perMode.length; k++) {
      const d = Math.hypot(points[i] - centers[2 * k], points[i + 1] - centers[2 * k + 1]);
      if (d < best) { best = d; nearest = k; }
    }
    if (best > reach) off++; else perMode[nearest]++;
  }
  return {off, perMode, n: points.length / 2};
}

// ------------------------------------------------------------------------------------------
// Arrays from Python: int16 or int8 points (see widgets/views.py), float32 numbers

function bytes(value) {
  if (value instanceof DataView) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  return new Uint8Array(0);
}
export function decode(value, kind, scale = 1) {
  const raw = bytes(value).buffer;
  const typed = kind === "int16" ? new Int16Array(raw) : kind === "int8" ? new Int8Array(raw) : new Float32Array(raw);
  const out = new Float32Array(typed.length);
  for (let i = 0; i < typed.length; i++) out[i] = typed[i] / scale;
  return out;
}

/** Paths as the explorer draws them: `rows`, the tracked particles' points at each kept time, and
 * `final`, every particle's end point. Between start and end only the tracked particles are shown. */
function pathsFromView(view, x0, encoding) {
  const m = 2 * view.tracked, times = Float32Array.from(view.times, i => i / view.steps);
  const middle = decode(view.middle, "int8", encoding.coarse), final = decode(view.final, "int16", encoding.fine);
  const rows = [x0.subarray(0, m)];
  for (let j = 0; j < times.length - 2; j++) rows.push(middle.subarray(j * m, (j + 1) * m));
  rows.push(final.subarray(0, m));
  return {times, rows, final, tracked: view.tracked, n: final.length / 2};
}

function pathsFromSolve(path, nSteps, tracked) {
  const width = path.length / (nSteps + 1), m = 2 * Math.min(tracked, width / 2);
  const rows = Array.from({length: nSteps + 1}, (_, i) => path.subarray(i * width, i * width + m));
  return {times: Float32Array.from({length: nSteps + 1}, (_, i) => i / nSteps), rows,
          final: path.subarray(nSteps * width), tracked: m / 2, n: width / 2};
}

/** Where the particles are at time t: every end point at t = 1, else the tracked particles, linear
 * between kept times (a solver knows only its step points). */
function positionsAt(paths, t) {
  const {times, rows} = paths, last = times.length - 1;
  if (t >= times[last] - 1e-9) return {points: paths.final, segment: last - 1, fraction: 1};
  let j = 0;
  while (j < last - 1 && times[j + 1] < t) j++;
  const a = Math.min(1, Math.max(0, (t - times[j]) / (times[j + 1] - times[j] || 1)));
  const out = new Float32Array(rows[0].length);
  for (let i = 0; i < out.length; i++) out[i] = (1 - a) * rows[j][i] + a * rows[j + 1][i];
  return {points: out, segment: j, fraction: a};
}

// ------------------------------------------------------------------------------------------
// Drawing

const STYLE = `
.gm-explorer { font: 13px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
               display: flex; flex-direction: column; gap: 6px; max-width: 100%; }
.gm-explorer .gm-controls { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; }
.gm-explorer .gm-control { display: inline-flex; gap: 6px; align-items: center; }
.gm-explorer .gm-control input[type=range] { width: 150px; }
.gm-explorer .gm-readout { min-width: 3.2em; font-variant-numeric: tabular-nums; }
.gm-explorer .gm-canvases { display: flex; gap: 8px; flex-wrap: wrap; }
.gm-explorer canvas { background: #fff; border: 1px solid #ddd; }
.gm-explorer .gm-text { white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace); font-size: 12px; min-height: 2.7em; }
.gm-explorer button { padding: 2px 10px; }
`;

function addStyle() {
  if (document.getElementById("gm-explorer-style")) return;
  const style = Object.assign(document.createElement("style"), {id: "gm-explorer-style", textContent: STYLE});
  document.head.appendChild(style);
}

/** A square plot of [-limit, limit]^2 on a canvas of `size` CSS pixels, sharp on any screen. */
class Plot {
  constructor(size, limit, height = size) {
    this.size = size; this.height = height; this.limit = limit;
    this.ratio = window.devicePixelRatio || 1;
    this.canvas = document.createElement("canvas");
    this.canvas.width = Math.round(size * this.ratio);
    this.canvas.height = Math.round(height * this.ratio);
    this.canvas.style.width = `${size}px`;
    this.canvas.style.height = `${height}px`;
    this.context = this.canvas.getContext("2d");
    this.margin = {left: 30, right: 8, top: 22, bottom: 22};
    this.background = null; this.backgroundKey = null;
  }
  get inner() { return Math.min(this.size - this.margin.left - this.margin.right, this.height - this.margin.top - this.margin.bottom); }
  px(x) { return this.margin.left + (x + this.limit) / (2 * this.limit) * this.inner; }
  py(y) { return this.margin.top + (this.limit - y) / (2 * this.limit) * this.inner; }
  /** Paint the fixed layer, drawn once per key into an offscreen canvas. */
  paintBackground(key, draw) {
    if (key !== this.backgroundKey) {
      const layer = document.createElement("canvas");
      layer.width = this.canvas.width; layer.height = this.canvas.height;
      const g = layer.getContext("2d");
      g.scale(this.ratio, this.ratio);
      g.fillStyle = "#fff"; g.fillRect(0, 0, this.size, this.height);
      this.axes(g);
      draw(g);
      this.background = layer; this.backgroundKey = key;
    }
    const g = this.context;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.background, 0, 0);
    g.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    return g;
  }
  axes(g) {
    const left = this.px(-this.limit), right = this.px(this.limit), top = this.py(this.limit), bottom = this.py(-this.limit);
    g.strokeStyle = "#eee"; g.lineWidth = 1; g.fillStyle = "#666"; g.font = "10px sans-serif";
    for (let v = -Math.floor(this.limit); v <= this.limit; v += 2) {
      g.beginPath(); g.moveTo(this.px(v), top); g.lineTo(this.px(v), bottom);
      g.moveTo(left, this.py(v)); g.lineTo(right, this.py(v)); g.stroke();
      g.textAlign = "center"; g.fillText(String(v), this.px(v), bottom + 12);
      g.textAlign = "right"; g.fillText(String(v), left - 4, this.py(v) + 3);
    }
    g.strokeStyle = "#999"; g.strokeRect(left, top, right - left, bottom - top);
  }
  /** Clip what follows to the plotted square (call g.restore() after). */
  clip(g) {
    g.save(); g.beginPath();
    g.rect(this.px(-this.limit), this.py(this.limit), this.px(this.limit) - this.px(-this.limit), this.py(-this.limit) - this.py(this.limit));
    g.clip();
  }
  dots(g, points, color, radius = 1.6, alpha = 1) {
    g.globalAlpha = alpha; g.fillStyle = color;
    for (let i = 0; i < points.length; i += 2) {
      g.beginPath(); g.arc(this.px(points[i]), this.py(points[i + 1]), radius, 0, 2 * Math.PI); g.fill();
    }
    g.globalAlpha = 1;
  }
  title(g, text) {
    g.fillStyle = "#222"; g.font = "12px sans-serif"; g.textAlign = "center";
    g.fillText(text, this.margin.left + this.inner / 2, 15);
  }
  message(g, text) {
    const lines = text.split("\n"), cx = this.margin.left + this.inner / 2, cy = this.margin.top + this.inner / 2;
    g.font = "13px sans-serif"; g.textAlign = "center";
    const width = Math.max(...lines.map(line => g.measureText(line).width)) + 24;
    g.fillStyle = "rgba(255, 250, 225, 0.95)"; g.strokeStyle = "#c9a227";
    g.fillRect(cx - width / 2, cy - 12 - 9 * lines.length, width, 18 * lines.length + 12);
    g.strokeRect(cx - width / 2, cy - 12 - 9 * lines.length, width, 18 * lines.length + 12);
    g.fillStyle = "#5a4500";
    lines.forEach((line, i) => g.fillText(line, cx, cy + 4 + 18 * (i - (lines.length - 1) / 2)));
  }
  legend(g, entries) {
    g.font = "11px sans-serif"; g.textAlign = "left";
    let y = this.margin.top + 12;
    const width = 23 + Math.max(...entries.map(([, label]) => g.measureText(label).width));
    const x = this.px(this.limit) - width - 2;
    g.fillStyle = "rgba(255, 255, 255, 0.8)"; g.fillRect(x - 6, y - 11, width + 6, 15 * entries.length + 4);
    for (const [color, label, line] of entries) {
      g.fillStyle = color; g.strokeStyle = color;
      if (line) { g.beginPath(); g.moveTo(x, y - 4); g.lineTo(x + 12, y - 4); g.stroke(); }
      else { g.beginPath(); g.arc(x + 6, y - 4, 3, 0, 2 * Math.PI); g.fill(); }
      g.fillStyle = "#222"; g.fillText(label, x + 17, y); y += 15;
    }
  }
  /** Arrows u, v at grid points (flat); length = speed * scale data units, capped at `cap`. */
  arrows(g, grid, uv, scale, cap, color = "#1f77b4") {
    g.strokeStyle = color; g.fillStyle = color; g.lineWidth = 1.2; g.globalAlpha = 0.85;
    for (let i = 0; i < grid.length; i += 2) {
      let dx = uv[i] * scale, dy = uv[i + 1] * scale;
      const length = Math.hypot(dx, dy);
      if (length > cap) { dx *= cap / length; dy *= cap / length; }
      const x0 = this.px(grid[i] - dx / 2), y0 = this.py(grid[i + 1] - dy / 2);
      const x1 = this.px(grid[i] + dx / 2), y1 = this.py(grid[i + 1] + dy / 2);
      const pixels = Math.hypot(x1 - x0, y1 - y0);
      if (pixels < 0.5) continue;
      const head = Math.min(5, 0.4 * pixels), angle = Math.atan2(y1 - y0, x1 - x0);
      g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke();
      g.beginPath(); g.moveTo(x1, y1);
      g.lineTo(x1 - head * Math.cos(angle - 0.45), y1 - head * Math.sin(angle - 0.45));
      g.lineTo(x1 - head * Math.cos(angle + 0.45), y1 - head * Math.sin(angle + 0.45));
      g.closePath(); g.fill();
    }
    g.globalAlpha = 1;
  }
  /** The tracked particles' paths up to time t, with the solver's step points when `stepDots`. */
  paths(g, paths, t, color, stepDots = false) {
    const {times, rows} = paths, at = positionsAt(paths, t), m = rows[0].length;
    g.strokeStyle = color; g.lineWidth = 1; g.globalAlpha = 0.45;
    for (let i = 0; i < m; i += 2) {
      g.beginPath(); g.moveTo(this.px(rows[0][i]), this.py(rows[0][i + 1]));
      for (let j = 1; j <= at.segment; j++) g.lineTo(this.px(rows[j][i]), this.py(rows[j][i + 1]));
      const end = at.fraction === 1 ? rows[at.segment + 1] : at.points;
      g.lineTo(this.px(end[i]), this.py(end[i + 1]));
      g.stroke();
    }
    if (stepDots) {
      g.fillStyle = color; g.globalAlpha = 0.8;
      for (let j = 0; j < times.length && times[j] <= t + 1e-9; j++)
        for (let i = 0; i < m; i += 2) {
          g.beginPath(); g.arc(this.px(rows[j][i]), this.py(rows[j][i + 1]), 1.8, 0, 2 * Math.PI); g.fill();
        }
    }
    g.globalAlpha = 1;
    return at.points;
  }
}

function arrowCap(side) { return 0.9 * 2 * 5.5 / (side - 1); }

function grid(limit, side) {
  const out = new Float64Array(2 * side * side);
  for (let row = 0; row < side; row++)
    for (let col = 0; col < side; col++) {     // the order of plotting.velocity_on_grid: x varies fastest
      out[2 * (row * side + col)] = -limit + 2 * limit * col / (side - 1);
      out[2 * (row * side + col) + 1] = -limit + 2 * limit * row / (side - 1);
    }
  return out;
}

const fmt = (value, digits = 2) => Number(value).toFixed(digits);
const percent = (count, n) => `${fmt(100 * count / Math.max(1, n), 1)}%`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// ------------------------------------------------------------------------------------------
// The widget

function keyOf(spec, layer, settings) {
  return spec.layers[layer].keys.map(name => {
    const control = spec.controls.find(c => c.name === name);
    return `${name}=${control.values.findIndex(v => v === settings[name])}`;
  }).join("|");
}

function buildControls(spec, settings, changed) {
  const row = Object.assign(document.createElement("div"), {className: "gm-controls"});
  const inputs = {};
  for (const control of spec.controls) {
    const box = Object.assign(document.createElement("label"), {className: "gm-control"});
    box.dataset.control = control.name;
    box.append(Object.assign(document.createElement("span"), {textContent: control.label}));
    const labels = control.labels || control.values.map(String);
    let input;
    if (control.kind === "slider") {
      input = Object.assign(document.createElement("input"), {type: "range", min: 0, max: control.values.length - 1, step: 1});
      input.value = String(Math.max(0, control.values.indexOf(settings[control.name])));
      const readout = Object.assign(document.createElement("span"), {className: "gm-readout"});
      readout.textContent = labels[Number(input.value)];
      input.addEventListener("input", () => {
        settings[control.name] = control.values[Number(input.value)];
        readout.textContent = labels[Number(input.value)];
        changed(control.name, false);
      });
      box.append(input, readout);
    } else {
      input = document.createElement("select");
      control.values.forEach((value, i) => input.append(new Option(labels[i], String(i), false, value === settings[control.name])));
      input.addEventListener("input", () => { settings[control.name] = control.values[Number(input.value)]; changed(control.name, false); });
    }
    input.addEventListener("change", () => changed(control.name, true));
    input.setAttribute("aria-label", control.label);
    if (control.kind !== "slider") box.append(input);
    inputs[control.name] = input;
    row.append(box);
  }
  return {row, inputs};
}

function safely(action) {
  try { action(); } catch (error) { /* no kernel (a static page): nothing to tell */ }
}

function render({model, el}) {
  addStyle();
  const spec = model.get("spec"), settings = {...model.get("settings")};
  const root = Object.assign(document.createElement("div"), {className: "gm-explorer"});
  root.dataset.kind = spec.kind; root.dataset.name = spec.name; root.dataset.frames = "0";
  root.dataset.lmSuppressShortcuts = "true";             // JupyterLab: arrow keys move the sliders, not the cells
  root.addEventListener("keydown", event => event.stopPropagation());
  const arrays = model.get("arrays"), encoding = spec.encoding;
  const decodeFine = name => decode(arrays[name], "int16", encoding.fine);
  const data = decodeFine("data"), centers = Float64Array.from(spec.ring.centers.flat());
  const starts = {};
  const startsFor = key => (starts[key] ||= decodeFine(`x0:${key}`));
  const received = {};                        // learned views sent by the kernel, by layer and key
  let live = false;                           // a kernel answered
  const pending = new Set(), cache = new Map();

  const text = Object.assign(document.createElement("div"), {className: "gm-text"});
  const canvases = Object.assign(document.createElement("div"), {className: "gm-canvases"});
  const plot = new Plot(spec.size, spec.limit);
  const lossPlot = spec.kind === "trainer" ? new Plot(Math.round(spec.size * 0.85), spec.limit, spec.size) : null;
  if (lossPlot) canvases.append(lossPlot.canvas);
  canvases.append(plot.canvas);
  const {row, inputs} = buildControls(spec, settings, changed);
  root.append(row);
  const buttons = {};
  if (spec.kind === "trainer") {
    const bar = Object.assign(document.createElement("div"), {className: "gm-controls"});
    for (const name of ["Start", "Pause", "Reset"]) {
      buttons[name] = Object.assign(document.createElement("button"), {textContent: name});
      buttons[name].addEventListener("click", () => {
        if (!live) { showStatus("training needs a running kernel: run the notebook"); return; }
        safely(() => model.send({kind: "command", name: name.toLowerCase()}));
      });
      bar.append(buttons[name]);
    }
    const status = Object.assign(document.createElement("span"), {className: "gm-status"});
    bar.append(status);
    root.prepend(bar);
  }
  root.append(canvases, text);
  el.append(root);

  function showStatus(message) {
    const status = root.querySelector(".gm-status");
    if (status) status.textContent = message;
  }

  // -------------------------------------------------------------- what to draw, and from where
  function learned(layer) {
    if (!spec.layers[layer]) return {status: "none"};
    const key = keyOf(spec, layer, settings), stored = storedView(layer, key) || (received[layer] || {})[key];
    if (stored) return {status: "ready", view: stored, key};
    if (!live) return {status: "missing", key};
    if (!pending.has(`${layer}:${key}`)) {
      pending.add(`${layer}:${key}`);
      safely(() => model.send({kind: "request", layer, key, settings: {...settings}}));
    }
    return {status: "pending", key};
  }

  /** A view saved with the notebook: views[layer] holds a JSON index and one buffer of every view's arrays. */
  const indexes = {};
  function storedView(layer, key) {
    const saved = model.get("views")[layer];
    if (!saved || saved.index === undefined) return undefined;
    if (!indexes[layer] || indexes[layer].source !== saved.index)
      indexes[layer] = {source: saved.index, entries: JSON.parse(saved.index), data: bytes(saved.data)};
    const {entries, data} = indexes[layer];
    let entry = entries[key];
    if (entry && entry.alias !== undefined) entry = entries[entry.alias];   // an equal view stored once
    if (!entry) return undefined;
    const view = {};
    for (const [name, value] of Object.entries(entry))
      view[name] = value && value.bytes !== undefined ? data.slice(value.at, value.at + value.bytes) : value;
    return view;
  }

  function exactField() {
    const exact = spec.exact;
    if (!exact || settings.field !== "exact") return null;
    for (const [name, value] of Object.entries(exact.requires || {}))
      if (settings[name] !== value) return {refused: exact.refusal};
    const std = spec.ring.std;
    if (exact.field === "ring") return {field: ringField(centers, std)};
    const k = settings[exact.mode_from], center = centers.slice(2 * k, 2 * k + 2);
    if (exact.field === "mode") return {field: ringField(center, std)};
    return {field: guidedField(ringField(centers, std), ringField(center, std), settings[exact.w_from])};
  }

  /** Steps and solver of the current setting (a budget of NFE gives as many steps as fit, at least one). */
  function solveSetting() {
    if (spec.solve.steps_from) return {steps: settings[spec.solve.steps_from], method: settings[spec.solve.method_from]};
    if (spec.solve.nfe_from) {
      const method = settings[spec.solve.method_from];
      return {steps: Math.max(1, Math.floor(settings[spec.solve.nfe_from] / spec.evaluations[method])), method};
    }
    return {steps: spec.solve.steps, method: spec.solve.method};
  }

  /** Exact paths, solved once per setting: moving t only reads them. */
  function exactPaths(field, x0, steps, method, tag) {
    const {t, ...rest} = settings;
    const key = `${tag}|${steps}|${method}|${JSON.stringify(rest)}`;
    if (!cache.has(key)) {
      if (cache.size > 64) cache.delete(cache.keys().next().value);
      cache.set(key, pathsFromSolve(solve(field, x0, steps, method), steps, tag === "accurate" ? x0.length / 2 : spec.n_paths));
    }
    return cache.get(key);
  }

  function startsKey() { return spec.starts_from ? settings[spec.starts_from] : "all"; }

  /** {paths, accurate, arrows, note}: what the current setting shows, exact or learned. */
  function content() {
    const exact = exactField();
    if (exact && exact.refused) return {message: exact.refused};
    const x0 = spec.layers.paths || spec.exact ? startsFor(startsKey()) : null;
    const out = {exact: Boolean(exact)};
    if (spec.kind === "paths") {
      const {steps, method} = solveSetting();
      out.steps = steps; out.method = method;
      if (exact && !(method in SOLVERS))
        return {message: `The browser solves with ${Object.keys(SOLVERS).join(", ")};\nchoose one of them for the exact field`};
      if (exact) out.paths = exactPaths(exact.field, x0, steps, method, "paths");
      else {
        const found = learned("paths");
        if (found.status !== "ready") return {message: waiting(found)};
        out.paths = decoded(`paths|${found.key}`, () => pathsFromView(found.view, x0, encoding));
        out.steps = found.view.steps;
      }
      if (spec.accurate) {
        const subset = x0.subarray(0, 2 * spec.accurate.count);
        if (exact) out.accurate = exactPaths(exact.field, subset, spec.accurate.steps, spec.accurate.method, "accurate");
        else {
          const found = learned("accurate");
          if (found.status === "ready")
            out.accurate = decoded(`accurate|${found.key}`, () => pathsFromView(found.view, subset, encoding));
        }
      }
    }
    if (spec.arrows) {
      const points = grid(spec.limit, spec.arrows.side);
      if (exact) {
        const uv = exact.field(points, settings.t, new Float64Array(points.length));
        out.arrows = {grid: points, uv};
      } else {
        const found = learned("arrows");
        if (found.status === "ready")
          out.arrows = {grid: points, uv: decoded(`arrows|${found.key}`, () => decode(found.view.uv, "int8", 127 / found.view.scale))};
        else if (spec.kind === "field") return {message: waiting(found)};
        else out.note = found.status === "pending" ? "learned arrows: computing in the kernel..."
          : `learned arrows at t = ${fmt(settings.t)}: not stored on this page (run the notebook)`;
      }
    }
    return out;
  }

  /** What a learned view decodes to, kept while the page lives (the views do not change under a key). */
  const decodedViews = new Map();
  function decoded(id, make) {
    if (!decodedViews.has(id)) {
      if (decodedViews.size > 512) decodedViews.clear();
      decodedViews.set(id, make());
    }
    return decodedViews.get(id);
  }

  function waiting(found) {
    return found.status === "pending" ? "computing in the kernel..." : "not stored on this page: run the notebook";
  }

  // -------------------------------------------------------------- drawing
  function drawBackground() {
    const base = spec.show_base && (spec.layers.paths || spec.exact) ? startsFor(startsKey()) : null;
    return plot.paintBackground(`${startsKey()}|${settings.base}`, g => {
      if (base) plot.dots(g, base, "#8fb0d8", 1.4, 0.6);
      plot.dots(g, data, spec.data_color || "#999", 1.3, 0.35);
      const trained = spec.radius && spec.radius.trained[settings.base];
      if (trained) {
        const [low, high] = trained;
        g.fillStyle = "rgba(44, 160, 44, 0.08)"; g.beginPath();
        g.arc(plot.px(0), plot.py(0), plot.px(high) - plot.px(0), 0, 2 * Math.PI);
        g.arc(plot.px(0), plot.py(0), plot.px(low) - plot.px(0), 0, 2 * Math.PI, true); g.fill();
      }
    });
  }

  function arrowColor() { return spec.arrows && spec.arrows.color || "#1f77b4"; }

  function colorOf() {
    if (spec.color_from) return spec.class_colors[settings[spec.color_from] % spec.class_colors.length];
    return spec.color || "#d62728";
  }

  function draw() {
    const started = performance.now();
    let g, line = "";
    if (spec.kind === "trainer") { line = drawTrainer(); g = null; }
    else {
      g = drawBackground();
      const shown = content(), t = settings.t ?? 1;
      if (shown.message) {
        plot.message(g, shown.message);
        line = shown.message;
        root.dataset.view = "message";
      } else {
        root.dataset.view = shown.exact ? "exact" : "learned";
        plot.clip(g);
        line = describe(g, shown, t);
        g.restore();
      }
      plot.title(g, title());
    }
    text.textContent = line;
    root.dataset.frames = String(Number(root.dataset.frames) + 1);
    root.dataset.drawMs = fmt(performance.now() - started, 2);
  }

  /** The title: spec.title with {control} replaced by the control's current label. */
  function title() {
    const source = settings.field === "exact" ? "exact field" : "learned field";
    if (spec.kind === "field") return `${source} at t = ${fmt(settings.t)} (${settings.base} base)`;
    const what = (spec.title || "").replace(/\{(\w+)\}/g, (_, name) => {
      const control = spec.controls.find(c => c.name === name);
      return control ? (control.labels || control.values.map(String))[control.values.indexOf(settings[name])] : name;
    });
    const trained = spec.radius && spec.radius.trained[settings.base];
    const outside = trained && (settings.radius < trained[0] || settings.radius > trained[1]) ? " (extrapolation)" : "";
    return `${spec.exact ? source + ", " : ""}${what}${outside}, t = ${fmt(settings.t ?? 1)}`;
  }

  function describe(g, shown, t) {
    const parts = [];
    if (shown.arrows) {
      plot.arrows(g, shown.arrows.grid, shown.arrows.uv, spec.arrows.scale, arrowCap(spec.arrows.side), arrowColor());
      let total = 0, top = 0;
      for (let i = 0; i < shown.arrows.uv.length; i += 2) {
        const speed = Math.hypot(shown.arrows.uv[i], shown.arrows.uv[i + 1]);
        total += speed; top = Math.max(top, speed);
      }
      if (spec.kind === "field")
        return `t = ${fmt(settings.t)}: mean speed on the ${spec.arrows.side} x ${spec.arrows.side} grid ${fmt(total / (shown.arrows.uv.length / 2))}, largest ${fmt(top)}`;
    }
    if (shown.accurate) plot.paths(g, shown.accurate, 1, "#888");
    const color = colorOf();
    const now = plot.paths(g, shown.paths, t, spec.accurate ? "#1f77b4" : color, Boolean(spec.accurate) && shown.steps <= 16);
    plot.dots(g, now, color, 2, 0.75);
    const legend = [["#999", "data"], [color, t < 1 ? `${shown.paths.tracked} particles at t = ${fmt(t)}` : "samples"]];
    if (spec.show_base) legend.splice(1, 0, ["#8fb0d8", "base"]);
    if (shown.arrows) legend.push([arrowColor(), `field at t = ${fmt(t)}`, true]);
    if (shown.accurate) legend.push(["#1f77b4", "the solver's steps", true],
                                    ["#888", `accurate (${spec.accurate.method}, ${spec.accurate.steps})`, true]);
    if (spec.radius) {
      const r = settings.radius;
      g.setLineDash([5, 4]); g.strokeStyle = "#2ca02c"; g.lineWidth = 1.2;
      g.beginPath(); g.arc(plot.px(0), plot.py(0), plot.px(r) - plot.px(0), 0, 2 * Math.PI); g.stroke(); g.setLineDash([]);
      legend.push(["#2ca02c", `requested r = ${fmt(r)}`, true]);
      if (spec.radius.trained[settings.base]) legend.push(["rgba(44, 160, 44, 0.35)", "trained radii"]);
    }
    plot.legend(g, legend);
    const final = shown.paths.final;
    const counts = modeCounts(final, centers, spec.ring.reach);
    const nfe = shown.steps * (spec.evaluations[shown.method] || 1);
    if (spec.solve.steps_from || spec.solve.nfe_from) parts.push(`${shown.method}, ${plural(shown.steps, "step")} = ${nfe} NFE`);
    else parts.push(`${spec.solve.method}, ${plural(spec.solve.steps, "step")}`);
    if (spec.radius) {
      const radii = [];
      for (let i = 0; i < final.length; i += 2) radii.push(Math.hypot(final[i], final[i + 1]));
      radii.sort((a, b) => a - b);
      const trained = spec.radius.trained[settings.base], r = settings.radius;
      if (!trained) parts.push(`r = ${fmt(r)}: the trained range is unknown`);
      else {
        const [low, high] = trained, inside = r >= low && r <= high;
        parts.push(`r = ${fmt(r)} ${inside ? "inside" : "OUTSIDE"} the trained radii [${fmt(low)}, ${fmt(high)}]${inside ? "" : ": extrapolation, not learned"}`);
      }
      parts.push(`at t = 1, median distance of the ${counts.n} samples from 0: ${fmt(radii[Math.floor(radii.length / 2)])}`);
    } else if (spec.color_from) {
      const k = settings[spec.color_from];
      parts.push(`at t = 1, ${percent(counts.perMode[k], counts.n)} of ${counts.n} samples within 3 std of mode ${k}`);
      if (spec.show_radius) {
        let total = 0;
        for (let i = 0; i < final.length; i += 2) total += Math.hypot(final[i], final[i + 1]);
        parts.push(`mean distance from 0: ${fmt(total / counts.n)} (the modes: ${fmt(Math.hypot(centers[0], centers[1]))})`);
      }
    } else {
      parts.push(`at t = 1, ${percent(counts.off, counts.n)} of ${counts.n} samples off every mode (the ring itself: ${fmt(100 * spec.ring.data_off_mode, 1)}%)`);
      parts.push(`per mode [${counts.perMode.join(", ")}]`);
    }
    if (shown.note) parts.push(shown.note);
    return parts.join(" | ");
  }

  // -------------------------------------------------------------- the live trainer
  const shownFrame = {frame: null};
  function drawTrainer() {
    const frame = model.get("views").frame;
    const g = plot.paintBackground("trainer", gg => plot.dots(gg, data, "#999", 1.3, 0.35));
    const t = settings.t;
    if (!frame) { plot.message(g, "no frame yet"); return "no frame yet"; }
    if (frame !== shownFrame.frame) {               // decode each frame once, whatever t shows of it
      const x0 = decode(frame.x0, "int16", encoding.fine);
      Object.assign(shownFrame, {frame, paths: pathsFromView(frame.paths, x0, encoding),
                                 uv: decode(frame.fields.uv, "int8", 127 / frame.fields.scale)});
    }
    const paths = shownFrame.paths, fields = frame.fields, side = spec.arrows.side;
    const index = fields.times.findIndex(v => Math.abs(v - t) < 1e-9);
    plot.clip(g);
    if (index >= 0) {
      const uv = shownFrame.uv.subarray(index * 2 * side * side, (index + 1) * 2 * side * side);
      plot.arrows(g, grid(spec.limit, side), uv, spec.arrows.scale, arrowCap(side));
    }
    const now = plot.paths(g, paths, t, "#d62728");
    plot.dots(g, now, "#d62728", 2, 0.7);
    g.restore();
    plot.legend(g, [["#999", "data"], ["#d62728", t < 1 ? `${paths.tracked} particles at t = ${fmt(t)}` : "samples"],
                    ["#1f77b4", `field at t = ${fmt(t)}`, true]]);
    plot.title(g, `${frame.preview_steps} Euler steps from fixed noise, t = ${fmt(t)}`);
    drawLoss(frame);
    const counts = modeCounts(paths.final, centers, spec.ring.reach);
    showStatus(model.get("status"));
    return `${frame.summary}\nsamples: ${percent(counts.off, counts.n)} of ${counts.n} off every mode | per mode [${counts.perMode.join(", ")}]`;
  }

  function drawLoss(frame) {
    const p = lossPlot, g = p.context, width = p.size, height = p.height, m = {left: 44, right: 10, top: 22, bottom: 34};
    g.setTransform(p.ratio, 0, 0, p.ratio, 0, 0);
    g.fillStyle = "#fff"; g.fillRect(0, 0, width, height);
    const losses = decode(frame.losses, "float32"), every = frame.loss_every, steps = frame.step;
    const xTop = niceCeiling(Math.max(100, steps)), yTop = frame.y_top;
    const X = s => m.left + s / xTop * (width - m.left - m.right), Y = v => height - m.bottom - Math.min(v, yTop) / yTop * (height - m.top - m.bottom);
    g.strokeStyle = "#999"; g.strokeRect(m.left, m.top, width - m.left - m.right, height - m.top - m.bottom);
    g.fillStyle = "#666"; g.font = "10px sans-serif";
    for (let i = 0; i <= 4; i++) {
      g.textAlign = "center"; g.fillText(String(Math.round(xTop * i / 4)), X(xTop * i / 4), height - m.bottom + 12);
      g.textAlign = "right"; g.fillText(fmt(yTop * i / 4, 2), m.left - 4, Y(yTop * i / 4) + 3);
    }
    g.textAlign = "center"; g.fillText("training step", m.left + (width - m.left - m.right) / 2, height - 6);
    if (frame.floor !== null && frame.floor !== undefined) {
      g.setLineDash([5, 4]); g.strokeStyle = "#444";
      g.beginPath(); g.moveTo(X(0), Y(frame.floor)); g.lineTo(X(xTop), Y(frame.floor)); g.stroke(); g.setLineDash([]);
    }
    g.strokeStyle = "#1f77b4"; g.lineWidth = 1.2; g.beginPath();
    losses.forEach((value, i) => (i ? g.lineTo : g.moveTo).call(g, X((i + 0.5) * every), Y(value)));
    g.stroke();
    g.fillStyle = "#222"; g.font = "12px sans-serif"; g.textAlign = "center";
    g.fillText(!steps ? "loss: press Start" : every === 1 ? `loss after ${plural(steps, "step")}`
               : `loss (means of ${every} steps) after ${plural(steps, "step")}`,
               width / 2, 15);
    if (frame.floor_note) { g.font = "10px sans-serif"; g.textAlign = "right"; g.fillText(frame.floor_note, width - m.right - 4, m.top + 12); }
  }

  function niceCeiling(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map(f => f * power).find(v => v >= value);
  }

  // -------------------------------------------------------------- events
  let scheduled = false, saveTimer = null;
  function redraw() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; draw(); });
  }
  function changed(name, final) {
    redraw();
    clearTimeout(saveTimer);
    if (final || spec.kind === "trainer") saveTimer = setTimeout(() => safely(() => {
      model.set("settings", {...settings});
      model.save_changes();
    }), final ? 0 : 150);
  }
  const onViews = () => redraw();
  const onSettings = () => {
    const fresh = model.get("settings");
    for (const [name, value] of Object.entries(fresh)) {
      if (settings[name] === value) continue;
      settings[name] = value;
      const control = spec.controls.find(c => c.name === name);
      if (control && inputs[name]) inputs[name].value = String(control.values.indexOf(value));
      const readout = inputs[name] && inputs[name].parentElement.querySelector(".gm-readout");
      if (readout) readout.textContent = (control.labels || control.values.map(String))[control.values.indexOf(value)];
    }
    redraw();
  };
  const onMessage = (message, buffers) => {
    if (!live) { live = true; root.dataset.kernel = "live"; }
    if (message.kind === "view") {
      const view = {...message.view};
      message.buffers.forEach((name, i) => { view[name] = buffers[i]; });
      (received[message.layer] ||= {})[message.key] = view;
      pending.delete(`${message.layer}:${message.key}`);
      redraw();
    } else if (message.kind === "refused") {
      pending.delete(`${message.layer}:${message.key}`);
      text.textContent = message.message;
    } else redraw();
  };
  model.on("change:views", onViews);
  model.on("change:settings", onSettings);
  model.on("change:status", onViews);
  model.on("msg:custom", onMessage);
  safely(() => model.send({kind: "hello"}));
  draw();
  return () => {
    model.off("change:views", onViews);
    model.off("change:settings", onSettings);
    model.off("change:status", onViews);
    model.off("msg:custom", onMessage);
  };
}

export default {render};
