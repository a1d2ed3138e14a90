// vmsim page runtime: the embedded data, DOM helpers, number formats, the
// stepper (buttons, keyboard, URL fragment) and small SVG charts. Every text
// from the data goes into the page with textContent, never as HTML.

const DATA = JSON.parse(document.getElementById("vmsim-data").textContent);
const APP = document.getElementById("app");
const SVGNS = "http://www.w3.org/2000/svg";

// el("div", {class: "x", text: "t", data: {k: "v"}, on: {click: f}}, child...)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv);
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

// 1234567 -> "1,234,567"
function fmtInt(n) {
  if (n === null || n === undefined) return "-";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 });
}

// 2000000 -> "2M", 1500 -> "1.5K", 0.25 -> "0.25" (decimal prefixes, for counts)
function fmtHuman(n) {
  const a = Math.abs(n);
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (const [v, s] of units) {
    if (a >= v) return trimNum(n / v) + s;
  }
  return trimNum(n);
}

function trimNum(x) {
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return String(Number(x.toFixed(digits)));
}

// bytes -> "4 KiB", "1.5 MiB"
function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = Number(n);
  while (x >= 1024 && i < units.length - 1 && x % 1 === 0) { x /= 1024; i++; }
  return trimNum(x) + " " + units[i];
}

function pct(x, digits) { return (100 * x).toFixed(digits === undefined ? 2 : digits) + "%"; }

function plural(n, one, many) { return fmtInt(n) + " " + (n === 1 ? one : (many || one + "s")); }

function hex(n, width) {
  const s = BigInt(n).toString(16);
  return "0x" + (width ? s.padStart(width, "0") : s);
}

function card(title, ...children) {
  return el("section", { class: "card" }, title ? el("h2", { text: title }) : null, ...children);
}

// The page's title, what it shows and the command that made it.
function pageHeader(subtitle) {
  return el("header", {},
    el("h1", { text: DATA.title }),
    subtitle ? el("p", { class: "sub", text: subtitle }) : null,
    el("code", { class: "cmd", text: "$ " + DATA.command, title: "the command that wrote this page" }));
}

function pageFooter() {
  return el("footer", {},
    "Written by vmsim " + DATA.vmsim_version + " (page data schema " + DATA.schema_version +
    "). The data is embedded in this file as JSON (script#vmsim-data); nothing is loaded from the network.");
}

function kv(rows) {
  return el("table", { class: "kv" },
    rows.filter(r => r).map(([k, v, key]) =>
      el("tr", {}, el("td", { text: k }), el("td", key ? { data: { k: key } } : {}, v))));
}

// A stepper over `count` steps: buttons, a slider, a jump box, keyboard
// (left/right, Home/End, PageUp/PageDown = 10 steps, space = play) and the
// step in the URL fragment (#step=N, 1-based). render(i) draws step i
// (0-based); label(i) is the toolbar's text.
class Stepper {
  constructor(opts) {
    this.count = opts.count;
    this.render = opts.render;
    this.label = opts.label || (i => "step " + (i + 1) + " of " + this.count);
    this.delay = opts.delay || 700;
    this.i = 0;
    this.timer = null;
    const b = (text, title, f, cls) => el("button", { type: "button", title, class: cls, on: { click: f } }, text);
    this.first = b("\u00ab first", "first step (Home)", () => this.go(0));
    this.prev = b("\u25C0 prev", "previous step (\u2190)", () => this.go(this.i - 1));
    this.playBtn = b("\u25B6 play", "play / pause (space)", () => this.toggle(), "play");
    this.next = b("next \u25B6", "next step (\u2192)", () => this.go(this.i + 1));
    this.last = b("last \u00bb", "last step (End)", () => this.go(this.count - 1));
    this.pos = el("span", { class: "pos", data: { k: "step-pos" } });
    this.jump = el("input", { type: "number", min: 1, max: this.count, title: "jump to step (Enter)", "aria-label": "jump to step" });
    this.jump.addEventListener("change", () => this.go(Number(this.jump.value) - 1));
    this.slider = el("input", { type: "range", min: 0, max: Math.max(0, this.count - 1), value: 0, "aria-label": "step" });
    this.slider.addEventListener("input", () => this.go(Number(this.slider.value)));
    this.bar = el("div", { class: "stepper", role: "toolbar" },
      this.first, this.prev, this.playBtn, this.next, this.last, this.pos,
      el("label", { class: "small" }, "go to ", this.jump), this.slider,
      el("span", { class: "keys", text: "\u2190 \u2192 step \u00b7 space play \u00b7 Home/End" }));
    document.addEventListener("keydown", e => this.key(e));
    window.addEventListener("hashchange", () => this.fromHash());
  }

  key(e) {
    if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA") && e.target.type !== "range") return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const k = e.key;
    let to = null;
    if (k === "ArrowRight" || k === "l") to = this.i + 1;
    else if (k === "ArrowLeft" || k === "h") to = this.i - 1;
    else if (k === "Home") to = 0;
    else if (k === "End") to = this.count - 1;
    else if (k === "PageDown") to = this.i + 10;
    else if (k === "PageUp") to = this.i - 10;
    else if (k === " " || k === "p") { e.preventDefault(); this.toggle(); return; }
    else if (k === "g") { e.preventDefault(); this.jump.focus(); this.jump.select(); return; }
    if (to !== null) { e.preventDefault(); this.stop(); this.go(to); }
  }

  fromHash() {
    const m = /(?:^#|&)step=(\d+)/.exec(location.hash);
    const i = m ? Number(m[1]) - 1 : 0;
    this.go(i, true);
  }

  start() { this.fromHash(); return this; }

  go(i, fromHash) {
    if (this.count === 0) { this.pos.textContent = "no steps"; return; }
    i = Math.max(0, Math.min(this.count - 1, Math.floor(Number.isFinite(i) ? i : 0)));
    this.i = i;
    this.render(i);
    this.pos.textContent = this.label(i);
    this.jump.value = i + 1;
    this.slider.value = i;
    this.first.disabled = this.prev.disabled = i === 0;
    this.next.disabled = this.last.disabled = i === this.count - 1;
    if (i === this.count - 1) this.stop();
    const want = "#step=" + (i + 1);
    if (!fromHash && location.hash !== want) history.replaceState(null, "", want);
    document.body.dataset.step = String(i + 1);
  }

  toggle() { if (this.timer) this.stop(); else this.play(); }

  play() {
    if (this.i >= this.count - 1) this.go(0);
    this.playBtn.textContent = "\u275A\u275A pause";
    this.timer = setInterval(() => this.go(this.i + 1), this.delay);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.playBtn.textContent = "\u25B6 play";
  }
}

// "Nice" tick values (1, 2, 5 x 10^k) covering [lo, hi].
function niceTicks(lo, hi, want) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(1, want || 5);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, step, hi: Math.max(hi, ticks[ticks.length - 1] || hi) };
}

// A line chart: series [{name, color, points: [[x, y], ...], dash}], axis
// labels with units, a legend, readable ticks (2M, not 2000000.0) and an
// optional vertical cursor at x = opts.cursor. Returns the <svg>.
function lineChart(opts) {
  const W = opts.width || 560, H = opts.height || 260;
  const m = { l: 62, r: 14, t: opts.title ? 28 : 12, b: 44 };
  const pts = opts.series.flatMap(s => s.points);
  let xmax = opts.xmax !== undefined ? opts.xmax : Math.max(1, ...pts.map(p => p[0]));
  let ymax = Math.max(opts.ymin || 0, ...pts.map(p => p[1]));
  const xt = niceTicks(0, xmax, 6), yt = niceTicks(0, ymax > 0 ? ymax : 1, 5);
  xmax = xt.hi; ymax = yt.hi;
  const X = x => m.l + (W - m.l - m.r) * x / xmax;
  const Y = y => H - m.b - (H - m.t - m.b) * y / ymax;
  const fmtX = opts.fmtX || fmtHuman, fmtY = opts.fmtY || fmtHuman;
  const g = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": opts.title || "chart" });
  if (opts.title) g.appendChild(svgEl("text", { x: m.l, y: 17, class: "title" }, opts.title));
  const axis = svgEl("g", { class: "axis" });
  for (const v of yt.ticks) {
    axis.appendChild(svgEl("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: "gridline" }));
    axis.appendChild(svgEl("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end", data: { tick: "y" } }, fmtY(v)));
  }
  for (const v of xt.ticks) {
    axis.appendChild(svgEl("line", { x1: X(v), x2: X(v), y1: H - m.b, y2: H - m.b + 4 }));
    axis.appendChild(svgEl("text", { x: X(v), y: H - m.b + 17, "text-anchor": "middle", data: { tick: "x" } }, fmtX(v)));
  }
  axis.appendChild(svgEl("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  axis.appendChild(svgEl("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  axis.appendChild(svgEl("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, opts.xLabel || ""));
  axis.appendChild(svgEl("text", { x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})` }, opts.yLabel || ""));
  g.appendChild(axis);
  for (const s of opts.series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
    g.appendChild(svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": 2,
      "stroke-dasharray": s.dash || null, data: { series: s.name } }, svgEl("title", {}, s.name)));
  }
  if (opts.cursor !== undefined && opts.cursor !== null) {
    g.appendChild(svgEl("line", { x1: X(opts.cursor), x2: X(opts.cursor), y1: m.t, y2: H - m.b, class: "cursor" }));
  }
  // Legend, top right, inside the plot.
  let ly = m.t + 6;
  const lx = W - m.r - 8;
  const leg = svgEl("g", { class: "legend" });
  for (const s of opts.series) {
    leg.appendChild(svgEl("line", { x1: lx - 150, x2: lx - 130, y1: ly + 5, y2: ly + 5, stroke: s.color,
      "stroke-width": 3, "stroke-dasharray": s.dash || null }));
    leg.appendChild(svgEl("text", { x: lx - 125, y: ly + 9 }, s.name));
    ly += 17;
  }
  const bg = svgEl("rect", { x: lx - 156, y: m.t, width: 156, height: ly - m.t + 2, fill: "#fff", opacity: 0.85,
    stroke: "#d8dde6" });
  if (opts.series.length) { g.appendChild(bg); g.appendChild(leg); }
  return g;
}

// A legend of colour swatches.
function legend(items) {
  return el("div", { class: "legend" }, items.map(([color, text]) =>
    el("span", {}, el("span", { class: "sw", style: { background: color } }), text)));
}

const FIELD_COLORS = ["var(--f0)", "var(--f1)", "var(--f2)", "var(--f3)", "var(--f4)", "var(--f5)", "var(--f6)", "var(--f7)"];
