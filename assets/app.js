// stride's page. Everything shown comes from the JSON API (/api/...), which calls the stride
// library; this script only lays the numbers out, highlights the cells the API names, and keeps
// the state in the address's fragment with the CLI's flag names (#op=conv&input=[[..]]&...).
// It never computes a convolution, a pooling or a gradient.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};

const HOMEWORK = {
  input: "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]",
  kernel: "[[4,3,3],[5,5,5],[2,4,3]]",
};
const OPS = {
  conv: {
    api: "/api/conv",
    fields: [
      ["input", "area", "[[1,2,0],[0,1,3],[2,2,1]]"], ["kernel", "area", "[[1,0],[0,-1]]"],
      ["bias", "text", "none"], ["stride", "text", "1"], ["padding", "text", "0"],
      ["dilation", "text", "1"], ["groups", "text", "1"],
      ["padding-mode", "select", "", ["zeros", "reflect", "replicate", "circular"]],
      ["flip", "check"], ["grad-output", "text", "ones"],
    ],
    examples: {
      "homework A ∗ B (5×5, 3×3)": HOMEWORK,
      "pen-and-paper I ∗ K, stride 2": {
        input: "[[1,1,-2,0,1],[1,0,0,2,1],[0,1,0,5,-1],[-2,1,0,-1,1],[0,1,0,5,-1]]",
        kernel: "[[0,1,1],[1,0,0],[0,1,0]]", stride: "2",
      },
      "d2l edge detector [[1,-1]]": {
        input: "[[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1]]",
        kernel: "[[1,-1]]",
      },
      "two channels in, two out, with bias": {
        input: "[[[1,2,0],[0,1,3],[2,2,1]],[[0,1,0],[1,0,1],[0,1,0]]]",
        kernel: "[[[[1,0],[0,1]],[[1,1],[0,0]]],[[[0,1],[1,0]],[[-1,0],[0,1]]]]", bias: "[0.5,-1]",
      },
      "1-D signal": { input: "[1,2,3,4,5,6]", kernel: "[1,0,-1]", padding: "1" },
      "strided, padded, dilated": {
        input: "[[1,2,3,4,5],[6,7,8,9,10],[11,12,13,14,15],[16,17,18,19,20],[21,22,23,24,25]]",
        kernel: "[[1,0],[0,-1]]", stride: "2", padding: "1", dilation: "2",
      },
    },
    render: renderConv,
  },
  pool: {
    api: "/api/pool",
    fields: [
      ["kind", "select", "", ["max", "min", "avg", "lp", "soft", "adaptive-max", "adaptive-avg",
        "global-max", "global-avg", "kmax", "fractional-max"]],
      ["input", "area", "[[1,2],[3,4]]"], ["kernel", "text", "2"], ["stride", "text", "kernel"],
      ["padding", "text", "0"], ["dilation", "text", "1"], ["ceil-mode", "check"],
      ["count-include-pad", "select", "", ["", "true", "false"]], ["norm-type", "text", "2"],
      ["output-size", "text", ""], ["k", "text", ""], ["grad-output", "text", "ones"],
    ],
    examples: {
      "homework max pooling, kernel 2, stride 1": {
        kind: "max", input: "[[109,92,72],[108,85,74],[110,74,79]]", kernel: "2", stride: "1",
      },
      "average pooling, ceil mode": {
        kind: "avg", input: "[[1,2,3,4],[5,6,7,8],[9,10,11,12]]", kernel: "2", padding: "1",
        "ceil-mode": "true", "count-include-pad": "false",
      },
      "soft pooling": { kind: "soft", input: "[[1,2,0],[0,1,3],[2,2,1]]", kernel: "2", stride: "1" },
    },
    render: renderPool,
  },
  "conv-transpose": {
    api: "/api/conv-transpose",
    fields: [
      ["input", "area", "[[1,2],[3,4]]"], ["kernel", "area", "[[1,1],[1,1]]"], ["bias", "text", "none"],
      ["stride", "text", "1"], ["padding", "text", "0"], ["output-padding", "text", "0"],
      ["dilation", "text", "1"], ["groups", "text", "1"], ["grad-output", "text", "ones"],
    ],
    examples: {
      "2×2 upsampling, stride 2": { input: "[[1,2],[3,4]]", kernel: "[[1,1],[1,1]]", stride: "2" },
      "1-D, overlapping": { input: "[1,2]", kernel: "[1,1,1]", stride: "2" },
      "3×3 kernel, stride 2, padding 1": {
        input: "[[1,2],[3,4]]", kernel: "[[1,2,1],[2,4,2],[1,2,1]]", stride: "2", padding: "1", "output-padding": "1",
      },
    },
    render: renderTranspose,
  },
  rf: {
    api: "/api/rf",
    fields: [["model", "wide", "conv(8,k=3) conv(8,k=3) conv(8,k=3)"], ["input-shape", "text", "1,28,28"]],
    examples: {
      "three 3×3 layers on 9×9": { model: "conv(8,k=3) conv(8,k=3) conv(8,k=3)", "input-shape": "1,9,9" },
      "d2l LeNet (lenet5)": { model: "lenet5" },
      "strided stem": { model: "conv(16,k=7,s=2,p=3) maxpool(3,s=2,p=1) conv(16,k=3,p=1)", "input-shape": "1,32,32" },
    },
    render: renderRf,
  },
  model: { fields: [["run", "select", "", []], ["image", "text", "0"]], examples: {}, render: null },
};
const DEFAULTS = {
  conv: HOMEWORK,
  pool: OPS.pool.examples["homework max pooling, kernel 2, stride 1"],
  "conv-transpose": OPS["conv-transpose"].examples["2×2 upsampling, stride 2"],
  rf: OPS.rf.examples["three 3×3 layers on 9×9"],
};

// ---- state in the fragment -------------------------------------------------------------------
// op (the view), view (direct | im2col | toeplitz) and cell (1-based, the cell shown first) are
// the page's own; every other key is a CLI flag and goes to the API as given.
const UI_KEYS = ["op", "view", "cell"];
function readHash() {
  const s = {};
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) s[k] = v;
  if (!s.op) s.op = "conv";
  return s;
}
// brackets and commas stay readable in shared links; everything else is URL-encoded
const enc = (v) => encodeURIComponent(v).replace(/%5B/g, "[").replace(/%5D/g, "]").replace(/%2C/g, ",");
function hashOf(s) {
  return "#" + Object.entries(s).filter(([, v]) => v !== "" && v != null)
    .map(([k, v]) => `${k}=${enc(v)}`).join("&");
}
function go(s) {
  const h = hashOf(s);
  if (location.hash === h) run(); else location.hash = h;
}

// ---- the form ---------------------------------------------------------------------------------
function buildForm(s) {
  const op = OPS[s.op];
  const box = $("#fields");
  box.textContent = "";
  if (!op) return;
  for (const [key, kind, hint, options] of op.fields) {
    let input;
    const id = "f-" + key;
    if (kind === "area") input = el("textarea", { id, name: key, placeholder: hint, spellcheck: "false" });
    else if (kind === "select") {
      input = el("select", { id, name: key });
      for (const o of options) input.append(el("option", { value: o, text: o === "" ? "(default)" : o }));
    } else if (kind === "check") input = el("input", { id, name: key, type: "checkbox" });
    else input = el("input", { id, name: key, type: "text", placeholder: hint, spellcheck: "false" });
    if (kind === "check") input.checked = key in s && s[key] !== "false" && s[key] !== "0";
    else if (s[key] != null) input.value = s[key];
    box.append(el("div", { class: "field" + (kind === "wide" ? " wide" : "") },
      el("label", { for: id, text: key }), input, el("span", { class: "err", "data-for": key, role: "alert" })));
  }
  const names = Object.keys(op.examples);
  if (names.length) {
    const pick = el("select", { id: "example", "aria-label": "course examples" },
      el("option", { value: "", text: "course examples…" }), ...names.map((n) => el("option", { value: n, text: n })));
    pick.addEventListener("change", () => { if (pick.value) go({ op: s.op, ...op.examples[pick.value] }); });
    box.append(el("div", { class: "field" }, el("label", { for: "example", text: "example" }), pick));
  }
}
function formState() {
  const s = { op: readHash().op };
  for (const f of document.querySelectorAll("#fields [name]")) {
    if (f.type === "checkbox") { if (f.checked) s[f.name] = "true"; } else if (f.value.trim() !== "") s[f.name] = f.value.trim();
  }
  return s;
}
function showError(err) {
  const spot = document.querySelector(`#fields .err[data-for="${CSS.escape(err.field || "")}"]`) || $("#form-error");
  spot.textContent = err.message;
}
function clearErrors() { for (const e of document.querySelectorAll(".err")) e.textContent = ""; }

// ---- grids: tensors as tables of text ---------------------------------------------------------
// A tensor {shape, text} becomes one table per leading index over its last two axes; every <td>
// carries its flat index, so the API's flat indices can be highlighted.
function grid(name, t, onpick) {
  const sh = t.shape;
  const W = sh.length ? sh[sh.length - 1] : 1;
  const H = sh.length >= 2 ? sh[sh.length - 2] : 1;
  const lead = sh.slice(0, Math.max(0, sh.length - 2));
  const planes = t.text.length / (W * H);
  const box = el("div", { class: "grid-box", id: "grid-" + name });
  const cells = [];
  for (let p = 0; p < planes; p++) {
    const tab = el("table", { class: "grid", "data-name": name });
    if (planes > 1) {
      let rest = p; const idx = [];
      for (let a = lead.length - 1; a >= 0; a--) { idx.unshift(rest % lead[a]); rest = Math.floor(rest / lead[a]); }
      tab.append(el("caption", { text: `[${idx.join(", ")}]` }));
    }
    for (let r = 0; r < H; r++) {
      const tr = el("tr");
      for (let c = 0; c < W; c++) {
        const i = (p * H + r) * W + c;
        const td = el("td", { "data-i": String(i), text: t.text[i] });
        if (onpick) td.addEventListener("click", () => onpick(i));
        cells[i] = td; tr.append(td);
      }
      tab.append(tr);
    }
    box.append(tab);
  }
  return { el: box, cells, width: W };
}
function mark(g, idxs, cls) {
  if (!g) return;
  for (const td of g.el.querySelectorAll("td." + cls)) td.classList.remove(cls);
  for (const i of idxs || []) if (g.cells[i]) g.cells[i].classList.add(cls);
}
// 1-based (row, column) of flat index i in tensor t, with the leading index when there are several planes
function posLabel(t, i) {
  const sh = t.shape;
  const W = sh[sh.length - 1], H = sh.length >= 2 ? sh[sh.length - 2] : 1;
  const p = Math.floor(i / (W * H)), r = Math.floor((i % (W * H)) / W), c = i % W;
  const lead = t.text.length > W * H ? `[${p}] ` : "";
  return sh.length >= 2 && H > 1 ? `${lead}(${r + 1}, ${c + 1})` : `${lead}(${c + 1})`;
}
const panel = (title, ...kids) => el("div", { class: "panel" }, el("h3", { text: title }), ...kids);
const lines = (ls) => el("div", { class: "lines", text: (ls || []).join("\n") });

function stepsView(ex, onTensor) {
  const box = el("div");
  ex.steps.forEach((st, si) => {
    const d = el("div", { class: "step" }, el("h4", { text: st.heading }), lines(st.lines));
    const row = el("div", { class: "row" });
    for (const t of st.tensors) {
      const g = grid(`step${si}-${t.name.replace(/\W+/g, "_")}`, t.tensor);
      if (onTensor) onTensor(t.name, g);
      row.append(panel(t.name, g.el));
    }
    if (st.tensors.length) d.append(row);
    d.append(lines(st.after));
    box.append(d);
  });
  return box;
}

// ---- stepping through cells (buttons, play, arrow keys) ---------------------------------------
let stepper = null;
let timer = null;
function controls(count, width, set, label) {
  let k = 0;
  const info = el("span", { id: "cell-info" });
  const to = (j) => {
    k = ((j % count) + count) % count;
    set(k);
    info.textContent = `${label} ${k + 1} of ${count}`;
    // the address follows the step, so a link can open on this cell (no new history entry)
    const st = readHash();
    if (k > 0) st.cell = String(k + 1); else delete st.cell;
    history.replaceState(null, "", hashOf(st));
  };
  stepper = { to, get k() { return k; }, width, count };
  const play = el("button", { type: "button", id: "play", text: "▶ play" });
  play.addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "▶ play"; return; }
    play.textContent = "❚❚ pause";
    timer = setInterval(() => to(k + 1), 900);
  });
  const first = Math.min(Math.max(1, Number(readHash().cell) || 1), count) - 1;
  const box = el("div", { class: "controls" },
    el("button", { type: "button", id: "prev", text: "◀", "aria-label": "previous cell", onclick: () => to(k - 1) }),
    el("button", { type: "button", id: "next", text: "▶", "aria-label": "next cell", onclick: () => to(k + 1) }),
    play, info);
  return { box, start: () => to(first) };
}
document.addEventListener("keydown", (e) => {
  if (!stepper || /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
  const d = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: stepper.width, ArrowUp: -stepper.width }[e.key];
  if (d === undefined) return;
  e.preventDefault();
  stepper.to(stepper.k + d);
});

// ---- convolution -----------------------------------------------------------------------------
function renderConv(j, out) {
  const T = j.tensors;
  const g = {};
  const grads = {};
  const gsum = el("div", { class: "sum", id: "grad-sum", text: "click an entry of dL/dK or dL/dX to see the products that make it" });
  const pickGrad = (which) => (i) => {
    const e = which === "w" ? j.grad_weight[i] : j.grad_input[i];
    mark(g.padded, which === "w" ? e.a : [], "src");
    mark(g.kernel, which === "x" ? e.a : [], "src");
    mark(grads.gy, e.b, "dst");
    mark(grads.gw, which === "w" ? [i] : [], "cur");
    mark(grads.gx, which === "x" ? [i] : [], "cur");
    if (full) {
      mark(full.spread, which === "x" ? j.full_conv.windows[i] : [], "win");
      mark(full.flipped, which === "x" ? j.full_conv.taps[i] : [], "tap");
    }
    gsum.textContent = (which === "w" ? `dL/dK: ` : `dL/dX: `) + e.sum;
  };
  g.padded = grid("padded", T.padded);
  mark(g.padded, j.pad, "pad");
  g.kernel = grid("kernel", T.kernel);
  g.output = grid("output", T.output, (i) => stepper.to(i));
  const sum = el("div", { class: "sum", id: "cell-sum" });
  const step = el("div", { id: "cell-step" });
  const hasPad = T.padded.text.length !== T.input.text.length;
  const top = el("div", { class: "row" },
    panel(hasPad ? "padded input" : "input", g.padded.el),
    panel(j.tensors.kernel_used && out.flip ? "kernel (slid flipped)" : "kernel", g.kernel.el),
    T.bias ? panel("bias", grid("bias", T.bias).el) : null,
    panel("output", g.output.el));
  // im2col / Toeplitz views: the current column (row) follows the current cell
  const views = { direct: null, im2col: j.explain.im2col, toeplitz: j.explain.toeplitz };
  const viewBox = el("div", { id: "view-box" });
  let viewGrids = [];
  const showView = (v) => {
    viewBox.textContent = ""; viewGrids = [];
    if (v === "direct") return;
    if (!views[v]) { viewBox.append(el("p", { class: "note", text: "the Toeplitz matrix of this problem is too large to show" })); return; }
    // the output size and the operands are shown above already
    const rest = { ...views[v], steps: views[v].steps.slice(2) };
    viewBox.append(stepsView(rest, (name, gg) => viewGrids.push([name, gg])));
    if (stepper) stepper.to(stepper.k);
  };
  const radios = el("div", { class: "controls", role: "radiogroup" }, el("span", { text: "view:" }));
  for (const v of ["direct", "im2col", "toeplitz"]) {
    const r = el("input", { type: "radio", name: "view", id: "view-" + v, value: v });
    if (v === (out.view || "direct")) r.checked = true;
    r.addEventListener("change", () => {
      showView(v);
      const st = readHash();
      if (v === "direct") delete st.view; else st.view = v;
      history.replaceState(null, "", hashOf(st));
    });
    radios.append(r, el("label", { for: "view-" + v, text: v }));
  }
  const outLen = T.output.shape.slice(-j.nd).reduce((a, b) => a * b, 1);
  const kshape = T.kernel.shape.slice(2);
  const taps = kshape.reduce((a, b) => a * b, 1);
  const set = (k) => {
    const c = j.cells[k];
    mark(g.padded, c.a, "win"); mark(g.kernel, c.b, "tap"); mark(g.output, [k], "cur");
    // the element-wise products as the API lists them (window value · kernel tap), kernel-shaped
    const prods = { shape: [c.a.length / taps, ...kshape], text: c.products };
    step.textContent = "";
    const st = j.first_cell_step != null ? j.explain.direct.steps[j.first_cell_step + k] : null;
    step.append(el("div", { class: "row" }, panel(st ? `${st.heading}: products` : "products", grid("products", prods).el)));
    sum.textContent = "⟨window, kernel⟩ = " + c.sum;
    for (const [name, gg] of viewGrids) {
      const rows = gg.cells.length / gg.width;
      if (name === "columns") mark(gg, [...Array(rows).keys()].map((r) => r * gg.width + (k % outLen)), "cur");
      if (name === "T") mark(gg, [...Array(gg.width).keys()].map((c) => (k % rows) * gg.width + c), "cur");
    }
  };
  const ctl = controls(j.cells.length, g.output.width, set, "output cell");
  grads.gy = grid("grad_output", T.grad_output);
  grads.gw = grid("grad_weight", T.grad_weight, pickGrad("w"));
  grads.gx = grid("grad_input", T.grad_input, pickGrad("x"));
  const full = j.full_conv && {
    spread: grid("spread", j.full_conv.spread),
    flipped: grid("flipped", j.full_conv.flipped),
  };
  const fullRow = full && el("div", { class: "row" },
    panel("dL/dY spread by the stride and padded by dilation·(kernel−1)", full.spread.el),
    panel("flipped kernel", full.flipped.el));
  const gradRow = el("div", { class: "row" },
    panel("dL/dY (grad-output)", grads.gy.el), panel("dL/dK", grads.gw.el),
    panel("dL/db", grid("grad_bias", T.grad_bias).el), panel("dL/dX", grads.gx.el));
  out.box.append(
    lines(j.explain.direct.steps[0].lines), top, ctl.box, step, sum, radios, viewBox,
    el("h2", { text: "Gradients" }),
    el("p", { class: "note", text: "dL/dK correlates the input with dL/dY; dL/dX is the full convolution of dL/dY with the flipped kernel. Click an entry." }),
    gradRow, gsum,
    full ? el("p", { class: "note", text: "dL/dX as a full convolution: the window of the clicked entry over the spread and padded dL/dY, times the flipped kernel." }) : null,
    fullRow,
    el("details", {}, el("summary", { text: "worked solution (forward)" }), stepsView(j.explain.direct)),
    el("details", {}, el("summary", { text: "worked solution (gradients)" }), stepsView(j.explain.grad)));
  ctl.start();
  showView(out.view || "direct");
}

// ---- pooling ----------------------------------------------------------------------------------
function renderPool(j, out) {
  const T = j.tensors;
  const gi = grid("input", T.input);
  const go_ = grid("output", T.output, (i) => stepper.to(i));
  const gy = grid("grad_output", T.grad_output);
  const gx = T.grad_input ? grid("grad_input", T.grad_input) : null;
  const step = el("div", { id: "cell-step" });
  const route = el("div", { class: "sum", id: "route" });
  const set = (k) => {
    const c = j.cells[k];
    mark(gi, c.window, "win"); mark(go_, [k], "cur"); mark(gy, [k], "cur");
    mark(gx, c.routes.map((r) => r[0]), "dst");
    step.textContent = "";
    const st = j.first_cell_step != null ? j.explain.direct.steps[j.first_cell_step + k] : null;
    if (st) step.append(el("h4", { text: st.heading }), lines(st.lines));
    route.textContent = `backward: dL/dY at ${posLabel(T.output, k)} flows to dL/dX at ` +
      c.routes.map((r) => `${posLabel(T.input, r[0])} × ${r[1]}`).join(", ");
  };
  const ctl = controls(j.cells.length, go_.width, set, "output cell");
  out.box.append(lines(j.explain.direct.steps[0].lines),
    el("div", { class: "row" }, panel("input", gi.el), panel(`${j.kind} pooling output`, go_.el)),
    ctl.box, step,
    el("h2", { text: "Backward" }),
    el("div", { class: "row" }, panel("dL/dY (grad-output)", gy.el), gx ? panel("dL/dX", gx.el) : null), route,
    el("details", {}, el("summary", { text: "worked solution" }), stepsView(j.explain.direct)));
  ctl.start();
}

// ---- transposed convolution -------------------------------------------------------------------
function renderTranspose(j, out) {
  const T = j.tensors;
  const gi = grid("input", T.input, (i) => stepper.to(i));
  const gk = grid("kernel", T.kernel);
  const sum = el("div", { class: "sum", id: "cell-sum" });
  const gsum = el("div", { class: "sum", id: "out-sum", text: "click an output value to see what landed on it" });
  const go_ = grid("output", T.output, (i) => {
    const e = j.outputs[i];
    mark(gi, e.a, "src"); mark(gk, e.b, "tap"); mark(go_, [i], "cur");
    gsum.textContent = `output ${posLabel(T.output, i)} = ` + e.sum;
  });
  const set = (k) => {
    const e = j.inputs[k];
    mark(gi, [k], "cur"); mark(go_, e.a, "dst"); mark(gk, e.b, "tap");
    sum.textContent = `input ${posLabel(T.input, k)} = ${T.input.text[k]} scatters ${T.input.text[k]} × kernel into the highlighted outputs: ` +
      e.products.join(", ");
  };
  const ctl = controls(j.inputs.length, gi.width, set, "input cell");
  const gr = (n, t) => (t ? panel(n, grid(n.replace(/\W+/g, "_"), t).el) : null);
  out.box.append(
    el("div", { class: "row" }, panel("input", gi.el), panel("kernel", gk.el),
      T.bias ? panel("bias", grid("bias", T.bias).el) : null, panel("output", go_.el)),
    ctl.box, sum, gsum,
    el("h2", { text: "Gradients" }),
    el("div", { class: "row" }, gr("dL/dY", T.grad_output), gr("dL/dK", T.grad_weight), gr("dL/db", T.grad_bias), gr("dL/dX", T.grad_input)));
  ctl.start();
}

// ---- receptive field --------------------------------------------------------------------------
function blank(shape) { const n = shape.reduce((a, b) => a * b, 1); return { shape, text: Array(n).fill("") }; }
function renderRf(j, out) {
  const S = j.summary;
  const inSp = S.input_shape.slice(1);
  const gIn = grid("rf_input", blank(inSp.length === 1 ? [1, inSp[0]] : inSp.slice(-2)));
  const info = el("div", { class: "sum", id: "rf-info", text: "pick a layer, then click one of its output cells" });
  const outBox = el("div", { id: "rf-out" });
  const tab = el("table", { class: "plain", id: "rf-table" },
    el("tr", {}, ...["#", "layer", "output", "size", "jump", "start"].map((h) => el("th", { text: h }))));
  const pick = (li) => {
    const row = S.layers[li];
    const sp = j.spans[li];
    outBox.textContent = "";
    if (!sp) { info.textContent = `${row.layer}: no receptive field (flattened)`; return; }
    tab.querySelectorAll("tr").forEach((tr, r) => tr.classList.toggle("on", r === li + 1));
    const oSp = row.out_shape.slice(1);
    const gOut = grid("rf_output", blank(oSp.length === 1 ? [1, oSp[0]] : oSp.slice(-2)), (i) => {
      const W = oSp[oSp.length - 1];
      const [r, c] = oSp.length === 1 ? [0, i] : [Math.floor(i / W), i % W];
      const rs = oSp.length === 1 ? [0, 0] : sp[sp.length - 2][r];
      const cs = sp[sp.length - 1][c];
      mark(gOut, [i], "cur");
      if (!rs || !cs) { mark(gIn, [], "win"); info.textContent = "this cell sees only padding"; return; }
      const Wi = inSp[inSp.length - 1];
      const idx = [];
      for (let y = rs[0]; y <= rs[1]; y++) for (let x = cs[0]; x <= cs[1]; x++) idx.push(y * Wi + x);
      mark(gIn, idx, "win");
      info.textContent = `layer ${row.index} cell (${r + 1}, ${c + 1}) sees input rows ${rs[0] + 1}–${rs[1] + 1}, columns ${cs[0] + 1}–${cs[1] + 1}`;
    });
    outBox.append(panel(`output of layer ${row.index}: ${row.layer}`, gOut.el));
  };
  S.layers.forEach((row, li) => {
    const rf = row.receptive_field;
    const f = (k) => (rf ? rf.map((a) => a[k]).join(" × ") : "–");
    const tr = el("tr", { tabindex: "0" }, el("td", { text: String(row.index) }), el("td", { text: row.layer }),
      el("td", { text: row.out_shape.join("×") }), el("td", { text: f("size") }), el("td", { text: f("jump") }), el("td", { text: f("start") }));
    tr.addEventListener("click", () => pick(li));
    tab.append(tr);
  });
  stepper = null;
  out.box.append(tab, el("div", { class: "row" }, panel(`input ${S.input_shape.join("×")}`, gIn.el), outBox), info);
  pick(0);
}

// ---- model -----------------------------------------------------------------------------------
function image(t, scale) {
  // shades a 2-D plane of values (min → black, max → white) for a look; the numbers are in tables
  const [H, W] = t.shape.length >= 2 ? t.shape.slice(-2) : [1, t.shape[0]];
  const cv = el("canvas", { width: String(W), height: String(H), title: t.text.join(" ") });
  cv.style.width = `${W * scale}px`; cv.style.height = `${H * scale}px`;
  const ctx = cv.getContext("2d");
  const img = ctx.createImageData(W, H);
  const vals = t.data.map((v) => (v == null ? 0 : v));
  const lo = Math.min(...vals), hi = Math.max(...vals);
  vals.forEach((v, i) => {
    const s = hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 128;
    img.data.set([s, s, s, 255], i * 4);
  });
  ctx.putImageData(img, 0, 0);
  return cv;
}
function planes(t) {
  const [H, W] = t.shape.slice(-2);
  const n = t.data.length / (H * W);
  return [...Array(n).keys()].map((p) => ({
    shape: [H, W], data: t.data.slice(p * H * W, (p + 1) * H * W), text: t.text.slice(p * H * W, (p + 1) * H * W),
  }));
}
function chart(hist) {
  const cv = el("canvas", { width: "420", height: "200", id: "curves" });
  cv.style.background = "#fff";
  const ctx = cv.getContext("2d");
  const series = [["train_loss", "#d35400"], ["test_loss", "#e67e22"], ["train_acc", "#2471a3"], ["test_acc", "#5dade2"]];
  const n = hist.length;
  const maxLoss = Math.max(1e-9, ...hist.map((h) => Math.max(h.train_loss, h.test_loss)));
  for (const [key, color] of series) {
    ctx.strokeStyle = color; ctx.beginPath();
    hist.forEach((h, i) => {
      const x = 20 + (n > 1 ? (i * 380) / (n - 1) : 190);
      const v = key.endsWith("acc") ? h[key] : h[key] / maxLoss;
      const y = 190 - v * 170;
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
  return cv;
}
async function runModel(s, out) {
  const r = await fetch("/api/runs");
  const runs = (await r.json()).runs;
  const sel = $("#f-run");
  sel.textContent = "";
  for (const name of runs) sel.append(el("option", { value: name, text: name }));
  if (!runs.length) { out.box.append(el("p", { class: "note", text: "no run folders: start stride serve with --run DIR (a folder made by stride train), or from a folder with runs/ in it" })); return; }
  const run = s.run && runs.includes(s.run) ? s.run : runs[0];
  sel.value = run;
  const upload = el("input", { type: "file", id: "png", accept: "image/png" });
  $("#fields").append(el("div", { class: "field" }, el("label", { for: "png", text: "or upload a PNG" }), upload));
  const body = { run };
  if (s.image) body.image = Number(s.image);
  const show = async (b) => {
    const res = await fetch("/api/model", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
    const j = await res.json();
    if (!res.ok) { showError(j.error); return; }
    renderModel(j, out);
  };
  upload.addEventListener("change", async () => {
    const buf = new Uint8Array(await upload.files[0].arrayBuffer());
    out.box.textContent = "";
    show({ run, png: Array.from(buf) });
  });
  await show(body);
}
function renderModel(j, out) {
  const H = j.history || [];
  const hist = el("table", { class: "plain", id: "history" },
    el("tr", {}, ...["epoch", "train loss", "train acc", "test loss", "test acc"].map((h) => el("th", { text: h }))),
    ...H.map((h) => el("tr", {}, ...[h.epoch, h.train_loss.toFixed(4), h.train_acc.toFixed(4), h.test_loss.toFixed(4), h.test_acc.toFixed(4)]
      .map((v) => el("td", { text: String(v) })))));
  out.box.append(el("p", { class: "lines", text: j.spec }), el("div", { class: "row" }, panel("training curves (loss: oranges, accuracy: blues)", chart(H)), panel("history", hist)));
  for (const k of j.kernels) {
    out.box.append(panel(`${k.name} ${k.tensor.shape.join("×")}`, el("div", { class: "maps" }, ...planes(k.tensor).map((p) => image(p, 6)))));
  }
  if (j.note) out.box.append(el("p", { class: "note", text: j.note }));
  if (!j.image) return;
  out.box.append(el("h2", { text: `test image${j.label ? ": " + j.label : ""}` }), image(j.image, 5));
  for (const l of j.layers) {
    const t = l.output;
    const body = t.shape.length >= 2
      ? el("div", { class: "maps" }, ...planes(t).map((p) => image(p, 3)))
      : t.text.length > 20
        ? el("details", {}, el("summary", { text: `${t.text.length} values` }), el("div", { class: "lines", text: t.text.join("  ") }))
        : el("div", { class: "lines", text: t.text.join("  ") });
    out.box.append(panel(`${l.layer} → ${t.shape.join("×")}`, body));
  }
  out.box.append(panel("class probabilities", el("table", { class: "plain", id: "probs" },
    ...j.probabilities.map((p) => el("tr", {}, el("td", { text: p.class }), el("td", { text: p.text }))))));
}

// ---- main ------------------------------------------------------------------------------------
async function run() {
  if (timer) { clearInterval(timer); timer = null; }
  let s = readHash();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.op === s.op);
  const op = OPS[s.op];
  const out = { box: $("#out"), view: s.view, flip: "flip" in s };
  out.box.textContent = "";
  stepper = null;
  buildForm(s);
  clearErrors();
  if (!op) { showError({ field: "", message: `op: unknown view '${s.op}'; use conv, pool, conv-transpose, rf or model` }); return; }
  if (s.op === "model") return runModel(s, out);
  // a bare #op=... opens that view's first course example
  if (Object.keys(s).filter((k) => !UI_KEYS.includes(k)).length === 0) {
    s = { op: s.op, ...DEFAULTS[s.op] };
    history.replaceState(null, "", hashOf(s));
    buildForm(s);
  }
  const body = {};
  for (const [k, v] of Object.entries(s)) if (!UI_KEYS.includes(k)) body[k] = v;
  document.body.dataset.state = "computing";
  try {
    const r = await fetch(op.api, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) { showError(j.error); document.body.dataset.state = "error"; return; }
    op.render(j, out);
    document.body.dataset.state = "done";
  } catch (e) {
    showError({ field: "", message: `the server did not answer: ${e}` });
    document.body.dataset.state = "error";
  }
}
$("#form").addEventListener("submit", (e) => { e.preventDefault(); go(formState()); });
window.addEventListener("hashchange", run);
run();
