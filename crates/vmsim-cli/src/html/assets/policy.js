// vmsim policy: the reference string stepped through: the frames after each
// reference (the textbook grid), hit or miss, the victim and why, and the
// policy's own state (hand, accessed/dirty bits, lists, counters, next uses).

(function () {
  const R = DATA.report, S = DATA.state, steps = R.steps || [];
  const K = steps.length;
  const name = p => String(p);
  const handPolicies = { clock: "hand", sieve: "hand", "clock-pro": "cold hand" };

  // Physical frame slots: a missing page takes the victim's slot or the
  // first free one (the textbook table's rows).
  const slots = [];
  {
    const cur = new Array(R.frames).fill(null);
    for (const s of steps) {
      let slot = -1;
      if (!s.hit) {
        if (s.evicted !== null) slot = cur.findIndex(p => p !== null && name(p) === name(s.evicted));
        if (slot < 0) slot = cur.findIndex(p => p === null);
        if (slot >= 0) cur[slot] = s.page;
      } else {
        slot = cur.findIndex(p => p !== null && name(p) === name(s.page));
      }
      slots.push({ pages: cur.slice(), slot });
    }
  }

  // ---- header and summary ----
  APP.appendChild(pageHeader(R.policy + (R.oracle ? " (an oracle: no OS can run it)" : "") + ": " + DATA.description));
  const miss = R.misses, hits = R.hits;
  APP.appendChild(card("Totals",
    el("div", { class: "row" },
      el("div", { class: "grow" }, kv([
        ["input", DATA.input],
        ["frames", fmtInt(R.frames), "frames"],
        ["references", fmtInt(R.references), "references"],
        ["distinct pages", fmtInt(R.distinct_pages)],
        R.ties ? ["ties", R.ties] : null,
      ])),
      el("div", { class: "grow" }, kv([
        ["hits", el("span", {}, el("span", { class: "pill hit", data: { k: "hits" }, text: fmtInt(hits) })), "hits-row"],
        ["misses", el("span", {}, el("span", { class: "pill miss", data: { k: "misses" }, text: fmtInt(miss) }), "  ", pct(R.miss_ratio) + " of references")],
        ["evictions", fmtInt(R.evictions), "evictions"],
        ["frames are listed", "next victim first: " + DATA.order],
      ]))),
    K < R.references ? el("p", { class: "small muted", text: "This page steps through the first " + fmtInt(K) + " references of " +
      fmtInt(R.references) + (DATA.cut_by_size ? " (cut to keep the page small)" : " (--trace-steps)") + "; the totals cover all of them." }) : null));

  // ---- the reference string ----
  const strip = el("div", { class: "strip", data: { k: "strip" } });
  steps.forEach((s, i) => strip.appendChild(el("span", {
    class: "ref " + (s.hit ? "hit" : "miss"), title: "step " + (i + 1) + ": " + name(s.page) + (s.hit ? " hit" : " miss"),
    text: name(s.page) + (S[i] && S[i].write ? "w" : ""), on: { click: () => st.go(i) } })));

  // ---- the textbook grid: frames (rows) x references (columns) ----
  const gridBox = el("div", { class: "scroll" });
  const COLS = 32;
  function grid(cur) {
    let lo = 0, hi = K;
    if (K > COLS) { lo = Math.max(0, Math.min(K - COLS, cur - Math.floor(COLS / 2))); hi = lo + COLS; }
    const t = el("table", { class: "grid", data: { k: "grid" } });
    const head = el("tr", {}, el("th", { text: "step" }));
    const refs = el("tr", {}, el("th", { text: "reference" }));
    for (let i = lo; i < hi; i++) {
      head.appendChild(el("th", { class: "num", data: i === cur ? { cur: "1" } : {}, style: i === cur ? { background: "var(--cur)" } : {}, text: i + 1 }));
      refs.appendChild(el("td", { class: "mono", style: { fontWeight: 700, textAlign: "center", background: i === cur ? "var(--cur)" : "" }, text: name(steps[i].page) }));
    }
    t.appendChild(head); t.appendChild(refs);
    for (let f = 0; f < R.frames && f < 64; f++) {
      const row = el("tr", {}, el("th", { text: "frame " + f }));
      for (let i = lo; i < hi; i++) {
        const p = slots[i].pages[f];
        const changed = slots[i].slot === f && !steps[i].hit;
        const touched = slots[i].slot === f && steps[i].hit;
        row.appendChild(el("td", { class: "mono", style: {
          textAlign: "center", background: changed ? "var(--miss-bg)" : touched ? "var(--hit-bg)" : i === cur ? "#fffbe6" : "",
          fontWeight: changed || touched ? 700 : 400, color: p === null ? "var(--muted)" : "" }, text: p === null ? "\u00b7" : name(p) }));
      }
      t.appendChild(row);
    }
    const fault = el("tr", {}, el("th", { text: "miss?" }));
    for (let i = lo; i < hi; i++) {
      fault.appendChild(el("td", { style: { textAlign: "center", color: steps[i].hit ? "var(--hit)" : "var(--miss)", fontWeight: 700 },
        text: steps[i].hit ? "" : (steps[i].evicted !== null ? "\u2717 " + name(steps[i].evicted) : "\u2717") }));
    }
    t.appendChild(fault);
    return t;
  }

  // ---- one step ----
  const view = el("div", {});
  function render(i) {
    const s = steps[i], x = S[i];
    for (const [j, c] of Array.from(strip.children).entries()) c.classList.toggle("cur", j === i);
    const curRef = strip.children[i];
    if (curRef && curRef.scrollIntoView && strip.scrollHeight > strip.clientHeight) curRef.scrollIntoView({ block: "nearest" });
    clear(gridBox).appendChild(grid(i));
    const curCol = gridBox.querySelector("[data-cur]");
    if (curCol && gridBox.scrollWidth > gridBox.clientWidth) gridBox.scrollLeft = Math.max(0, curCol.offsetLeft - gridBox.clientWidth / 2);
    clear(view);
    view.appendChild(el("div", { class: "steplabel" },
      "Step " + (i + 1) + ": reference to page ", el("b", { class: "mono", data: { k: "step-page" }, text: name(s.page) }),
      x.write ? " (a write)" : "", "  ",
      el("span", { class: "pill " + (s.hit ? "hit" : "miss"), data: { k: "step-outcome" }, text: s.hit ? "hit" : "miss" }),
      s.evicted !== null ? el("span", {}, "  ", el("span", { class: "pill warn" }, "evicted ", el("span", { data: { k: "step-evicted" }, text: name(s.evicted) }))) : null));
    view.appendChild(el("div", { class: "note " + (s.hit ? "good" : s.evicted !== null ? "bad" : ""), data: { k: "why" }, text: x.why }));
    const boxes = el("div", { class: "boxes", data: { k: "frames" }, style: { paddingTop: "16px" } });
    s.frames.forEach((p, j) => {
      const ps = x.pages[j];
      const isCur = name(p) === name(s.page);
      const cls = "box" + (isCur ? (s.hit ? " touched" : " new") : "") + (j === 0 && handPolicies[R.policy] ? " hand" : "");
      const meta = [];
      meta.push("A=" + (ps.a ? 1 : 0) + " D=" + (ps.d ? 1 : 0));
      if (ps.note.list) meta.push(ps.note.list);
      if (ps.note.label) meta.push(ps.note.label + ": " + ps.note.text);
      meta.push("loaded " + (ps.loaded + 1) + ", used " + (ps.last + 1));
      boxes.appendChild(el("div", { class: cls, data: { page: name(p) }, title: j === 0 ? "next victim" : "" },
        el("span", { style: { fontSize: "16px", fontWeight: 700 }, text: name(p) }),
        meta.map(m => el("span", { class: "meta", text: m }))));
    });
    if (s.evicted !== null) {
      boxes.appendChild(el("div", { class: "box victim", title: "evicted at this step" },
        el("span", { style: { fontSize: "16px", fontWeight: 700 }, text: name(s.evicted) }), el("span", { class: "meta", text: "evicted" })));
    }
    for (let j = s.frames.length; j < R.frames && j < 64; j++) boxes.appendChild(el("div", { class: "box empty", text: "free" }));
    view.appendChild(el("h3", { text: "Frames after the reference, next victim first" }));
    view.appendChild(el("p", { class: "small muted", text: "In " + R.policy + "'s order: " + DATA.order +
      (handPolicies[R.policy] ? "; \u25BC marks the " + handPolicies[R.policy] : "") + ". A and D are the accessed and dirty bits; steps are numbered from 1." }));
    view.appendChild(boxes);
    const sofar = steps.slice(0, i + 1).filter(t => !t.hit).length;
    view.appendChild(el("p", { class: "small muted", data: { k: "misses-so-far" },
      text: "Misses so far: " + sofar + " of " + (i + 1) + " references (" + pct(sofar / (i + 1), 1) + ")." }));
  }

  const st = new Stepper({ count: K, delay: 800, label: i => "reference " + (i + 1) + " of " + K, render });
  APP.appendChild(card("Reference string", el("p", { class: "small muted", text: "Green: hit, red: miss; a w marks a write. Click a reference to go to it." }), strip));
  APP.appendChild(card("Step by step", st.bar, view));
  APP.appendChild(card("Frames over time", el("p", { class: "small muted", text: "Each row is a physical frame; a missing page takes the victim's frame (red), a hit is green; the last row names the page evicted." }), gridBox));
  APP.appendChild(pageFooter());
  st.start();
})();
