// vmsim run: the report with its charts (faults and TLB misses over time,
// resident pages per process, swap traffic) and a step-through of the first
// references: the TLB probe of each level, the walk with its entries and
// their A/D updates, the fault and the kernel's action (demand-zero, COW
// copy with reference counts, eviction in the policy's order, swap-in) and
// the frames in use.

(function () {
  const R = DATA.report, steps = DATA.steps || [], K = steps.length;
  const samples = (R.timeline && R.timeline.samples) || [];
  const COLORS = ["#c0392b", "#2f6fdd", "#1f8a4c", "#b26a00", "#8e44ad", "#16a085", "#d35400", "#7f8c8d"];
  const procName = {};
  for (const p of R.processes || []) procName[p.pid] = p.name;

  // ---- header and totals ----
  APP.appendChild(pageHeader(DATA.description));
  const k = R.kernel || {};
  const faults = (k.demand_zero || 0) + (k.cow_copies || 0) + (k.cow_reuses || 0) + (k.shared_minor || 0) +
    (k.accessed_dirty || 0);
  const hitRate = R.tlb_lookups ? R.tlb_hits / R.tlb_lookups : 0;
  APP.appendChild(card("Totals",
    el("div", { class: "row" },
      el("div", { class: "grow" }, kv([
        ["machine", R.machine.description],
        ["references", fmtInt(R.references), "references"],
        ["translations", fmtInt(R.translations), "translations"],
        ["TLB", el("span", {}, el("span", { data: { k: "tlb-hits" }, text: fmtInt(R.tlb_hits) }), " hits, ",
          el("span", { data: { k: "tlb-misses" }, text: fmtInt(R.tlb_misses) }), " misses of every level (" + pct(hitRate) + " hit rate)")],
        ["page walks", fmtInt(R.walks) + " (" + fmtInt(R.walk_memory_references) + " memory references)", "walks"],
      ])),
      el("div", { class: "grow" }, kv([
        ["page faults", fmtInt(faults) + " (demand-zero " + fmtInt(k.demand_zero || 0) + ", COW copies " +
          fmtInt(k.cow_copies || 0) + ", COW reuses " + fmtInt(k.cow_reuses || 0) + ")", "faults"],
        ["swap", R.paging ? fmtInt(R.paging.swap_ins || 0) + " pages in, " + fmtInt(R.paging.swap_outs || 0) + " out" : "-", "swap"],
        ["peak frames used", fmtInt(R.peak_frames_used), "peak-frames"],
        ["processes", (R.processes || []).map(p => p.name + " (pid " + p.pid + ")").join(", ")],
        R.eat_cycles !== undefined && R.eat_cycles !== null ? ["effective access time", Number(R.eat_cycles).toFixed(2) + " cycles"] : null,
      ])))));

  // ---- charts ----
  function rate(key) {
    const out = [];
    let r0 = 0, v0 = 0;
    for (const s of samples) {
      const dr = Math.max(1, s.references - r0);
      out.push([s.references, (s[key] - v0) * 1000 / dr]);
      r0 = s.references; v0 = s[key];
    }
    return out;
  }
  const charts = el("div", { class: "row" });
  if (samples.length) {
    charts.appendChild(el("div", { class: "grow", data: { k: "chart-events" } }, lineChart({
      title: "Faults and TLB misses over the run", xLabel: "references (simulated time)", yLabel: "events per 1000 references",
      series: [
        { name: "page faults", color: COLORS[0], points: rate("faults") },
        { name: "TLB misses", color: COLORS[1], points: rate("tlb_misses") },
        { name: "swap-ins", color: COLORS[3], points: rate("major_faults"), dash: "6 4" },
      ] })));
    const pids = Object.keys(samples[samples.length - 1].resident || {});
    for (const s of samples) for (const p of Object.keys(s.resident || {})) if (!pids.includes(p)) pids.push(p);
    charts.appendChild(el("div", { class: "grow", data: { k: "chart-memory" } }, lineChart({
      title: "Memory over the run", xLabel: "references (simulated time)", yLabel: "pages (frames)",
      series: [{ name: "frames in use", color: "#555", dash: "5 4", points: samples.map(s => [s.references, s.frames_used]) }]
        .concat(pids.map((p, i) => ({ name: (procName[p] || "pid " + p).slice(0, 18) + " (" + p + ")", color: COLORS[(i + 2) % COLORS.length],
          points: samples.map(s => [s.references, (s.resident || {})[p] || 0]) }))) })));
    charts.appendChild(el("div", { class: "grow", data: { k: "chart-swap" } }, lineChart({
      title: "Swap traffic (cumulative)", xLabel: "references (simulated time)", yLabel: "pages read from swap",
      series: [{ name: "swap-ins (major faults)", color: COLORS[3], points: samples.map(s => [s.references, s.major_faults]) }] })));
  } else {
    charts.appendChild(el("p", { class: "muted", text: "The run was too short for a timeline." }));
  }
  APP.appendChild(card("Over the run", charts,
    el("p", { class: "small muted", text: "Sampled every " + fmtInt(R.timeline ? R.timeline.interval : 0) +
      " references; rates are per interval. Page faults are the kernel's minor faults (demand-zero, copy-on-write, A/D); swap-ins are major faults." })));

  // ---- the steps ----
  if (!K) {
    APP.appendChild(card("Step by step", el("p", { class: "muted", text: "No reference was stepped through (--trace-steps 0, or an empty run)." })));
    APP.appendChild(pageFooter());
    return;
  }
  const levelName = i => "L" + (i + 1) + ((DATA.tlb_levels || [])[i] ? " (" + DATA.tlb_levels[i] + ")" : "");
  const sum = o => Object.values(o || {}).reduce((a, b) => a + b, 0);
  const outcome = s => s.killed ? "killed" : sum(s.mmu_faults) > 0 ? "fault" : (s.tlb[0] && s.tlb[0].hits > 0) ? "hit" :
    s.tlb.some(t => t.hits > 0) ? "lower" : "walk";
  const outcomeText = { hit: "TLB hit (L1)", lower: "TLB hit below L1", walk: "TLB miss: page walk", fault: "page fault", killed: "process killed" };
  const outcomeClass = { hit: "hit", lower: "info", walk: "info", fault: "miss", killed: "miss" };
  const kindLetter = { instr: "I", load: "L", store: "S", modify: "M" };

  // Frames in use after each step: the initial map plus each step's changes.
  const frameState = [];
  {
    const cur = new Map();
    for (const f of DATA.initial_frames || []) cur.set(f.pfn, { use: f.use, refs: f.refs, maps: [] });
    for (const s of steps) {
      for (const f of s.frames) {
        if (f.use === "free") cur.delete(f.pfn);
        else cur.set(f.pfn, { use: f.use, refs: f.refs, maps: f.maps });
      }
      frameState.push(new Map(cur));
    }
  }

  const strip = el("div", { class: "strip", data: { k: "strip" } });
  steps.forEach((s, i) => {
    const o = outcome(s);
    strip.appendChild(el("span", { class: "ref " + (o === "hit" ? "hit" : o === "fault" || o === "killed" ? "miss" : "info"),
      title: "reference " + s.n + ": " + (s.kind || "?") + " " + (s.va || "") + ": " + outcomeText[o],
      text: (kindLetter[s.kind] || "?") + (s.va ? s.va.slice(-5) : ""), on: { click: () => st.go(i) } }));
  });

  const KERNEL_ACTIONS = {
    demand_zero: "demand-zero: a free frame was zeroed and mapped (first touch of the page)",
    cow_copies: "copy-on-write: the shared page was copied into a new frame, the writer's entry now points at the copy",
    cow_reuses: "copy-on-write reuse: this process was the page's last owner, so the entry was just made writable",
    shared_minor: "minor fault on a shared page: mapped from the page cache / shared object",
    stack_growth: "the stack grew down to cover the address",
    spurious: "spurious fault: the entry was already valid (stale TLB entry flushed)",
    accessed_dirty: "A/D fault: the kernel set the accessed/dirty bit (no hardware A/D updates)",
    segfaults: "segmentation fault: the process was killed",
    forks: "fork", vforks: "vfork", exits: "exit",
  };
  const PAGING_ACTIONS = {
    major_faults: "major fault: the page was on swap",
    swap_ins: "swap-in: the page was read back from swap into a frame",
    swap_cache_hits: "swap-cache hit: the page was still in a frame, no read needed",
    swap_outs: "eviction: a victim page was written to swap",
    writebacks: "write-back: the dirty victim was written to its swap slot",
    clean_drops: "eviction of a clean page: its swap copy is current, nothing written",
    pages_scanned: "pages scanned by the replacement policy",
    kswapd_runs: "the page-out daemon ran (free frames below the low watermark)",
    direct_reclaims: "direct reclaim: nothing was free, the faulting process reclaimed",
    refaults: "refault: the page was evicted recently",
  };

  const view = el("div", {});
  function bitsCell(w) {
    const before = new Set(w.bits_before), after = new Set(w.bits_after);
    const cell = el("td", { class: "mono" });
    for (const b of w.bits_after) {
      const added = !before.has(b);
      cell.appendChild(el("span", { class: "pill " + (added ? "hit" : "plain"), title: added ? "set by this reference" : "",
        data: added ? { added: b } : {}, text: (added ? "+" : "") + b }));
      cell.appendChild(document.createTextNode(" "));
    }
    for (const b of w.bits_before) if (!after.has(b)) {
      cell.appendChild(el("span", { class: "pill miss", title: "cleared by this reference", data: { removed: b }, text: "\u2212" + b }));
      cell.appendChild(document.createTextNode(" "));
    }
    return cell;
  }

  function render(i) {
    const s = steps[i], o = outcome(s);
    for (const [j, c] of Array.from(strip.children).entries()) c.classList.toggle("cur", j === i);
    clear(view);
    view.appendChild(el("div", { class: "steplabel" },
      "Reference ", el("b", { data: { k: "step-n" }, text: fmtInt(s.n) }), ": ",
      s.kind ? el("span", {}, el("b", { data: { k: "step-kind" }, text: s.kind }), " of " + s.size + " bytes at ",
        el("b", { class: "mono", data: { k: "step-va" }, text: s.va }),
        " by " + (s.process || "?") + " (pid " + s.pid + ")  ") : "a reference that killed its process  ",
      el("span", { class: "pill " + outcomeClass[o], data: { k: "step-outcome" }, text: outcomeText[o] })));

    const ev = el("ul", { class: "events", data: { k: "events" } });
    // TLB probes, level by level.
    s.tlb.forEach(t => {
      if (!t.lookups) return;
      const hit = t.hits > 0;
      ev.appendChild(el("li", { class: hit ? "tlb-hit" : "tlb-miss", data: { k: "tlb-level", level: t.level } },
        "TLB " + levelName(t.level) + ": ", el("b", { text: hit ? "hit" : "miss" }),
        t.lookups > 1 ? " (" + t.lookups + " lookups: " + t.hits + " hit, " + t.misses + " missed; the access was retried after the fault)" : ""));
    });
    const wk = s.walker || {};
    if (wk.walks || wk.dirty_walks) {
      ev.appendChild(el("li", { class: "walk", data: { k: "walk-summary" } },
        (wk.dirty_walks && !wk.walks ? "walk to set the dirty bit: " : "page walk: ") + plural(s.walk_refs, "memory reference") +
        (s.walk_cache.hits ? " (the walk cache skipped the upper levels)" : "") +
        (s.ad_writes ? "; " + plural(s.ad_writes, "A/D bit write") : "") +
        (wk.faulted ? "; the walk faulted" : "")));
    }
    for (const [key, n] of Object.entries(s.mmu_faults || {})) {
      ev.appendChild(el("li", { class: "fault", data: { k: "mmu-fault" } }, "MMU fault: " + key.replace(/_/g, " ") + (n > 1 ? " (" + n + " times)" : "")));
    }
    for (const [key, n] of Object.entries(s.kernel || {})) {
      ev.appendChild(el("li", { class: "kernel", data: { k: "kernel-action", action: key } },
        "kernel: " + (KERNEL_ACTIONS[key] || key.replace(/_/g, " ")) + (n > 1 ? " (" + n + ")" : "")));
    }
    for (const [key, n] of Object.entries(s.paging || {})) {
      ev.appendChild(el("li", { class: "kernel", data: { k: "paging-action", action: key } },
        "paging: " + (PAGING_ACTIONS[key] || key.replace(/_/g, " ")) + (n > 1 ? " (" + n + ")" : "")));
    }
    if (s.translation) {
      ev.appendChild(el("li", { class: "done" }, "translated to physical address ",
        el("b", { class: "mono", data: { k: "step-pa" }, text: s.translation.pa }),
        " (frame " + fmtInt(s.translation.pfn) + ", a " + fmtBytes(s.translation.page_size) + " page)"));
    }
    view.appendChild(ev);

    // The walk's entries (their state after this reference).
    if (s.walk && s.walk.length) {
      const t = el("table", { class: "grid", data: { k: "walk" } },
        el("tr", {}, ["level", "table", "index", "entry at", "before", "after", "bits after (+ set, \u2212 cleared here)"].map(h => el("th", { text: h }))));
      for (const w of s.walk) {
        const changed = w.raw_before !== w.raw_after;
        t.appendChild(el("tr", { data: { level: w.level } },
          el("td", { text: w.table_name + " (" + w.level + ")" }),
          el("td", { class: "mono", text: w.table }),
          el("td", { class: "num", text: w.index_name + " " + w.index }),
          el("td", { class: "mono", text: w.entry_addr }),
          el("td", { class: "mono", style: { color: changed ? "var(--muted)" : "" }, text: w.new_table ? "(new table)" : w.raw_before }),
          el("td", { class: "mono", style: { fontWeight: changed ? 700 : 400 }, data: { k: "entry-after" }, text: w.raw_after }),
          bitsCell(w)));
      }
      view.appendChild(el("h3", { text: "The walk (" + DATA.format.name + "), root first" }));
      view.appendChild(el("div", { class: "scroll" }, t));
    } else if (DATA.structure !== "radix") {
      view.appendChild(el("p", { class: "small muted", text: "The page tables are " + DATA.structure + ": the entries are searched, not walked; see the counters above." }));
    }

    // Frames whose use or reference count changed.
    if (s.frames.length) {
      const t = el("table", { class: "grid", data: { k: "frame-changes" } },
        el("tr", {}, ["frame", "before", "after", "mapped by"].map(h => el("th", { text: h }))));
      for (const f of s.frames) {
        t.appendChild(el("tr", {},
          el("td", { class: "num", text: f.pfn }),
          el("td", { text: f.was_use + (f.was_use === "data" ? ", " + plural(f.was_refs, "reference") : "") }),
          el("td", { data: { k: "frame-after" }, text: f.use + (f.use === "data" ? ", " + plural(f.refs, "reference") : "") }),
          el("td", { class: "mono", text: (f.maps || []).map(m => "pid " + m[0] + " " + m[1]).join(", ") })));
      }
      view.appendChild(el("h3", { text: "Frames changed by this reference" + (s.frames_changed > s.frames.length ? " (first " + s.frames.length + " of " + s.frames_changed + ")" : "") }));
      view.appendChild(t);
    }

    // The replacement policy's order.
    const pol = s.policy || { count: 0, pages: [] };
    if (pol.count) {
      const boxes = el("div", { class: "boxes", data: { k: "policy" }, style: { paddingTop: "16px" } });
      pol.pages.forEach((p, j) => {
        const meta = [];
        if (p.list) meta.push(p.list);
        if (p.label) meta.push(p.label + ": " + p.text);
        if (p.maps && p.maps.length) meta.push("pid " + p.maps[0][0] + " " + p.maps[0][1]);
        const cur = s.translation && p.pfn === s.translation.pfn;
        boxes.appendChild(el("div", { class: "box" + (j === 0 ? " hand" : "") + (cur ? " touched" : ""), title: j === 0 ? "next victim" : "" },
          el("span", { style: { fontWeight: 700 }, text: "frame " + p.pfn }), meta.map(m => el("span", { class: "meta", text: m }))));
      });
      view.appendChild(el("h3", { text: "Replacement policy (" + DATA.policy + "): " + plural(pol.count, "evictable page") + ", next victim first" +
        (pol.count > pol.pages.length ? " (first " + pol.pages.length + ")" : "") }));
      view.appendChild(boxes);
    }

    // The frames map.
    const fs = frameState[i];
    const map = el("div", { class: "framemap", data: { k: "framemap" } });
    const touched = new Set(s.frames.map(f => f.pfn));
    if (s.translation) touched.add(s.translation.pfn);
    const pfns = Array.from(fs.keys()).sort((a, b) => a - b);
    const SHOW = 512;
    for (const pfn of pfns.slice(0, SHOW)) {
      const f = fs.get(pfn);
      map.appendChild(el("span", { class: "fr " + f.use + (touched.has(pfn) ? " now" : ""), data: { pfn },
        title: "frame " + pfn + ": " + f.use + (f.use === "data" ? ", " + plural(f.refs, "reference") : "") +
          ((f.maps || []).length ? " (" + f.maps.map(m => "pid " + m[0] + " " + m[1]).join(", ") + ")" : ""),
        text: f.use === "data" && f.refs > 1 ? String(f.refs) : "" }));
    }
    view.appendChild(el("h3", { text: "Frames in use after this reference: " + fmtInt(s.frames_in_use) + " of " + fmtInt(DATA.total_frames) }));
    view.appendChild(legend([["#9ec1f7", "page table"], ["#9ad8a8", "data page"], ["#cfd6e0", "data (tail of a large page)"],
      ["#f1c27d", "kernel slab"], ["#fff", "outlined: changed or used by this reference; a number: frames shared by that many mappings"]]));
    view.appendChild(map);
    if (pfns.length > SHOW) view.appendChild(el("p", { class: "small muted", text: "(the first " + SHOW + " of " + pfns.length + " frames in use)" }));
    const res = Object.entries(s.resident || {}).map(([p, n]) => (procName[p] || "pid " + p) + " (pid " + p + "): " + plural(n, "resident page"));
    if (res.length) view.appendChild(el("p", { class: "small", data: { k: "resident" }, text: res.join("; ") }));
  }

  const st = new Stepper({ count: K, delay: 600, label: i => "step " + (i + 1) + " of " + K + " (reference " + steps[i].n + ")", render });
  APP.appendChild(card("Step by step: the first " + plural(K, "reference"),
    el("p", { class: "small muted", text: "Each chip is a reference (I fetch, L load, S store, M modify; the address's last digits): green a first-level TLB hit, blue a lower-level hit or a walk, red a fault. Click one to go to it." }),
    strip, st.bar, view));
  APP.appendChild(pageFooter());
  st.start();
})();
