// vmsim alloc: the heap of a free list, the buddy allocator's pages or the
// slab caches, drawn after every operation and stepped through.

(function () {
  const R = DATA.report, T = DATA.text, steps = R.steps || [];
  const K = steps.length, KIND = R.allocator, C = R.config;
  const allocColor = i => `hsl(${(i * 67) % 360} 70% 80%)`;
  const allocStroke = i => `hsl(${(i * 67) % 360} 45% 40%)`;

  // The live allocations (and slab caches) after each step.
  const live = [];
  {
    const m = new Map();
    const caches = new Map();
    for (const s of steps) {
      if (s.outcome === "allocated") m.set(s.alloc, s);
      else if (s.outcome === "freed") m.delete(s.alloc);
      if (KIND === "slab") caches.set(s.cache, s.cache_stats);
      live.push({ allocs: new Map(m), caches: new Map(caches) });
    }
  }

  // A horizontal bar of [lo, hi) with segments {from, to, fill, stroke, label, title, cur}.
  function bar(lo, hi, segs, unit) {
    const W = 1060, H = 74, x0 = 26, x1 = W - 26;
    const X = v => x0 + (x1 - x0) * (v - lo) / Math.max(1, hi - lo);
    const g = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, data: { k: "heap" } });
    g.appendChild(svgEl("rect", { x: x0, y: 8, width: x1 - x0, height: 36, fill: "#f1f2f4", stroke: "#9aa6b8" }));
    const ticks = new Set([lo, hi]);
    for (const s of segs) {
      const w = Math.max(1, X(s.to) - X(s.from));
      const r = svgEl("rect", { x: X(s.from), y: 8, width: w, height: 36, fill: s.fill, stroke: s.stroke || "#59667a",
        "stroke-width": s.cur ? 3 : 1, data: { seg: s.kind || "" } }, svgEl("title", {}, s.title || s.label || ""));
      g.appendChild(r);
      if (s.hatch) g.appendChild(svgEl("rect", { x: X(s.from), y: 8, width: Math.max(1, X(s.from + s.hatch) - X(s.from)), height: 36,
        fill: "rgba(0,0,0,.18)" }, svgEl("title", {}, "header")));
      if (s.label && w > 8 * s.label.length) g.appendChild(svgEl("text", { x: X(s.from) + w / 2, y: 31, "text-anchor": "middle" }, s.label));
      ticks.add(s.from); ticks.add(s.to);
    }
    const sorted = [...ticks].sort((a, b) => a - b);
    let lastX = -100;
    for (const t of sorted) {
      const x = X(t);
      if (x - lastX < 34 && t !== hi) continue;
      lastX = x;
      g.appendChild(svgEl("line", { x1: x, x2: x, y1: 44, y2: 50, stroke: "#59667a" }));
      g.appendChild(svgEl("text", { x, y: 63, "text-anchor": "middle" }, String(t)));
    }
    return el("div", { class: "scroll" }, g, el("div", { class: "small muted", text: unit }));
  }

  // ---- free list ----
  function freeListView(i) {
    const s = steps[i], L = live[i];
    const segs = [];
    for (const [a, x] of L.allocs) {
      segs.push({ from: x.block.addr, to: x.block.addr + x.block.size, fill: allocColor(a), stroke: allocStroke(a),
        label: "ptr[" + a + "]", title: "ptr[" + a + "] = " + x.ptr + ": block " + x.block.addr + ", " + x.block.size + " bytes (" + x.size + " asked)",
        hatch: x.ptr - x.block.addr, cur: s.alloc === a && s.outcome === "allocated", kind: "alloc" });
    }
    for (const b of s.free_list) {
      const cur = s.outcome === "freed" && s.block && b.addr <= s.block.addr && s.block.addr < b.addr + b.size;
      segs.push({ from: b.addr, to: b.addr + b.size, fill: "#ffffff", stroke: "#9aa6b8", label: String(b.size),
        title: "free block at " + b.addr + ", " + b.size + " bytes", cur, kind: "free" });
    }
    const list = el("div", { class: "boxes", data: { k: "free-list" } });
    s.free_list.forEach((b, j) => {
      list.appendChild(el("div", { class: "box", data: { addr: b.addr, size: b.size } }, "addr " + b.addr,
        el("span", { class: "meta", text: "size " + b.size })));
      list.appendChild(el("span", { style: { alignSelf: "center" }, text: "\u2192" }));
    });
    list.appendChild(el("div", { class: "box empty", text: "NULL" }));
    const st = s.stats;
    return el("div", {},
      bar(C.base, C.base + C.size, segs, "addresses " + C.base + " to " + (C.base + C.size) + " (bytes); coloured: allocated blocks (the darker part is the header), white: free blocks with their sizes"),
      el("h3", { text: "The free list, in list order (" + C.order + " order)" }), list,
      el("p", { class: "small", data: { k: "stats" } }, plural(st.free_bytes, "byte") + " free in " + plural(st.free_blocks, "block") + ", largest " + st.largest_free +
        "; external fragmentation " + st.external_fragmentation + "; internal fragmentation " + st.internal_fragmentation + " bytes (" +
        plural(st.allocations, "live allocation") + ")"));
  }

  // ---- buddy ----
  function buddyView(i) {
    const s = steps[i], L = live[i];
    const segs = [];
    for (const [a, x] of L.allocs) {
      const n = 2 ** x.order;
      segs.push({ from: x.block, to: x.block + n, fill: allocColor(a), stroke: allocStroke(a), label: "alloc[" + a + "]",
        title: "alloc[" + a + "]: pages " + x.block + ".." + (x.block + n) + " (order " + x.order + ", " + x.pages + " asked)",
        cur: s.alloc === a && s.outcome === "allocated", kind: "alloc" });
    }
    s.free_lists.forEach((heads, o) => heads.forEach(h => segs.push({ from: h, to: h + 2 ** o, fill: "#ffffff", stroke: "#9aa6b8",
      label: "o" + o, title: "free block of order " + o + " (" + 2 ** o + " pages) at page " + h, kind: "free",
      cur: s.outcome === "freed" && s.block !== null && h <= s.block && s.block < h + 2 ** o })));
    const rows = s.free_lists.map((heads, o) => el("tr", {},
      el("td", { class: "num", text: o }), el("td", { class: "num", text: 2 ** o }),
      el("td", { class: "num", text: heads.length }), el("td", { class: "mono", text: heads.length ? heads.join(" ") : "-" })));
    return el("div", {},
      bar(C.first, C.first + C.pages, segs, "pages " + C.first + " to " + (C.first + C.pages) + "; coloured: allocated blocks, white: free blocks (oN = order N)"),
      el("h3", { text: "Free lists per order" }),
      el("table", { class: "grid", data: { k: "free-lists" } },
        el("tr", {}, el("th", { text: "order" }), el("th", { text: "pages" }), el("th", { text: "free blocks" }), el("th", { text: "first pages, in list order" })), rows),
      el("p", { class: "small", data: { k: "stats" }, text: s.free_pages + " of " + C.pages + " pages free" }));
  }

  // ---- slab ----
  function slabView(i) {
    const s = steps[i], L = live[i];
    const out = el("div", {});
    const rows = [];
    for (const [name, cs] of L.caches) {
      rows.push(el("tr", { class: name === s.cache ? "cur" : "" },
        el("td", { class: "mono", text: name }), el("td", { class: "num", text: cs.object_size }), el("td", { class: "num", text: cs.slot_size }),
        el("td", { class: "num", text: cs.objects_per_slab }), el("td", { class: "num", text: cs.slab_order }),
        el("td", { class: "num", text: cs.slabs }), el("td", { class: "num", text: cs.active_objects + "/" + cs.total_objects }),
        el("td", { class: "num", text: cs.partial_slabs + " / " + cs.full_slabs + " / " + cs.empty_slabs }),
        el("td", { class: "num", text: cs.internal_fragmentation_bytes })));
    }
    out.appendChild(el("table", { class: "grid", data: { k: "caches" } },
      el("tr", {}, ["cache", "object", "slot", "per slab", "order", "slabs", "active/total", "partial/full/empty", "wasted B"].map(h => el("th", { text: h }))), rows));
    // Each cache's slabs with their objects.
    for (const [name, cs] of L.caches) {
      const bySlab = new Map();
      for (const [a, x] of L.allocs) if (x.cache === name) {
        if (!bySlab.has(x.slab)) bySlab.set(x.slab, []);
        bySlab.get(x.slab).push([a, x]);
      }
      const slabs = el("div", { class: "boxes" });
      for (const [page, objs] of [...bySlab.entries()].sort((a, b) => a[0] - b[0])) {
        const slots = el("div", { style: { display: "flex", gap: "2px", flexWrap: "wrap", marginTop: "4px" } });
        for (let k = 0; k < cs.objects_per_slab; k++) {
          const o = objs.find(([, x]) => Math.floor((x.addr - page * C.page_size) / cs.slot_size) === k);
          slots.appendChild(el("span", { title: o ? "obj[" + o[0] + "] at " + hex(o[1].addr) : "free slot",
            style: { width: "16px", height: "16px", borderRadius: "3px", border: "1px solid #59667a",
              background: o ? allocColor(o[0]) : "#fff", outline: o && o[0] === s.alloc ? "2px solid var(--fg)" : "" } }));
        }
        slabs.appendChild(el("div", { class: "box", style: { textAlign: "left", minWidth: "120px" } },
          "slab at page " + page, el("span", { class: "meta", text: objs.length + "/" + cs.objects_per_slab + " in use" }), slots));
      }
      if (cs.empty_slabs) slabs.appendChild(el("div", { class: "box empty", text: cs.empty_slabs + " empty slab" + (cs.empty_slabs > 1 ? "s" : "") + " kept" }));
      out.appendChild(el("h3", { text: name + " (" + cs.slot_size + "-byte slots, " + cs.objects_per_slab + " per slab of order " + cs.slab_order + ")" }));
      out.appendChild(slabs);
    }
    out.appendChild(el("p", { class: "small", data: { k: "stats" }, text: "buddy allocator: " + s.buddy_free_pages + " of " + C.pages + " pages free" }));
    return out;
  }

  // ---- the page ----
  APP.appendChild(pageHeader(DATA.header));
  const t = R.totals;
  let totals;
  if (KIND === "free-list") {
    const e = t.end;
    totals = kv([["allocations", t.allocations + " (" + t.failures + " failed)", "allocations"], ["frees", String(t.frees)],
      ["elements searched", String(t.searched), "searched"],
      ["at the end", e.free_bytes + " of " + e.heap_bytes + " bytes free in " + plural(e.free_blocks, "block") + ", largest " + e.largest_free],
      ["external fragmentation", String(e.external_fragmentation) + " (1 - largest / free)", "external"],
      ["internal fragmentation", e.internal_fragmentation + " bytes (headers and padding of " + plural(e.allocations, "live allocation") + ")"]]);
  } else if (KIND === "buddy") {
    const f = t.fragmentation;
    totals = kv([["allocations", t.allocations + " (" + t.failures + " failed)", "allocations"], ["frees", String(t.frees)],
      ["live blocks", t.allocated_pages + " pages for " + t.requested_pages + " requested (internal fragmentation " + t.internal_fragmentation + " pages)"],
      ["buddyinfo", f.free_blocks.join(" "), "buddyinfo"], ["extfrag_index", f.extfrag_index.join(" ")], ["unusable_index", f.unusable_index.join(" ")]]);
  } else {
    totals = kv([["allocations", t.allocations + " (" + t.failures + " failed)", "allocations"],
      ["buddy pages free", t.buddy_free_pages + " of " + C.pages], ["caches", t.caches.map(c => c.name).join(", ")]]);
  }
  APP.appendChild(card("Totals", totals,
    K < DATA.operations ? el("p", { class: "small muted", text: "This page steps through the first " + K + " of " + DATA.operations + " operations (--trace-steps); the totals cover all." }) : null));

  const strip = el("div", { class: "strip", data: { k: "strip" } });
  steps.forEach((s, i) => strip.appendChild(el("span", { class: "ref " + (s.outcome === "failed" ? "miss" : s.outcome === "allocated" ? "info" : "plain"),
    title: T[i].split("\n")[0], text: String(s.op), on: { click: () => st.go(i) } })));

  const view = el("div", {});
  const render = i => {
    for (const [j, c] of Array.from(strip.children).entries()) c.classList.toggle("cur", j === i);
    const s = steps[i];
    clear(view);
    const lines = T[i].replace(/\n$/, "").split("\n");
    view.appendChild(el("div", { class: "steplabel" }, "Operation ", el("b", { class: "mono", data: { k: "op" }, text: String(s.op) }), "  ",
      el("span", { class: "pill " + (s.outcome === "failed" ? "miss" : s.outcome === "allocated" ? "info" : "hit"), data: { k: "outcome" }, text: s.outcome })));
    view.appendChild(el("pre", { class: "cmd", data: { k: "text" }, text: lines.join("\n") }));
    view.appendChild(KIND === "free-list" ? freeListView(i) : KIND === "buddy" ? buddyView(i) : slabView(i));
  };
  const st = new Stepper({ count: K, delay: 900, label: i => "operation " + (i + 1) + " of " + K, render });
  APP.appendChild(card("Operations", el("p", { class: "small muted", text: "aN allocates N, fI frees the I-th allocation; blue: an allocation, grey: a free, red: a failed allocation. Click one to go to it." }), strip));
  APP.appendChild(card("Step by step", st.bar, view));
  APP.appendChild(pageFooter());
  st.start();
})();
