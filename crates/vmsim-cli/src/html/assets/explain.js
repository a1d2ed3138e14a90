// vmsim explain: the address as coloured bit fields, the TLB lookup, each
// table read with its entry decoded, and the physical address or the fault.

(function () {
  const R = DATA.report, F = DATA.format, MODE = DATA.mode;
  const paging = MODE === "paging" ? R : (R.paging || null);
  const detail = DATA.walk_detail || [];

  const fieldColor = i => FIELD_COLORS[i % FIELD_COLORS.length];
  const big = s => BigInt(s);
  const kindText = { table: "points to the next table", leaf: "maps the page", invalid: "not present", reserved: "reserved bits set" };

  // Bits hi..lo of a BigInt as "0101".
  function bitsOf(v, hi, lo) {
    let s = "";
    for (let b = hi; b >= lo; b--) s += ((v >> BigInt(b)) & 1n) ? "1" : "0";
    return s;
  }

  // A row of bit boxes: fields [{name, hi, lo, color, dim, key, title}] highest first.
  function bitRow(value, fields, opts) {
    const row = el("div", { class: "bits", data: { k: opts && opts.key || "" } });
    for (const f of fields) {
      const cells = el("div", { class: "cells", style: { background: f.color } });
      const s = bitsOf(value, f.hi, f.lo);
      for (let i = 0; i < s.length; i++) cells.appendChild(el("span", { class: "bit", title: "bit " + (f.hi - i), text: s[i] }));
      const width = f.hi - f.lo + 1;
      const pos = el("div", { class: "pos" }, el("span", { text: f.hi }), width > 1 ? el("span", { text: f.lo }) : null);
      const lbl = el("div", { class: "lbl", title: f.title || f.name, text: width >= 2 || f.name.length <= 2 ? f.name : f.name.slice(0, 2) });
      row.appendChild(el("div", { class: "bitfield" + (f.dim ? " dim" : "") + (f.on ? " on" : ""), data: { field: f.name } }, pos, cells, lbl));
    }
    return row;
  }

  // ---- the address ----
  function addressFields(active) {
    const fs = (paging || R).fields || [];
    const out = [];
    const vaBits = F.va_bits;
    if (F.canonical === "sign-extend" && vaBits < 64) {
      out.push({ name: "sign extension", hi: 63, lo: vaBits, color: "#eceff3", dim: true,
        title: "bits 63-" + vaBits + " must all equal bit " + (vaBits - 1) + " (canonical address)" });
    } else if (vaBits < 64 && va >> BigInt(vaBits) !== 0n) {
      out.push({ name: "too wide", hi: 63, lo: vaBits, color: "var(--miss-bg)" });
    }
    fs.forEach((f, i) => out.push({ name: f.name, hi: f.hi, lo: f.lo, color: fieldColor(i), on: active && active(f, i) }));
    return out;
  }

  const va = paging ? big(paging.va) : null;

  function fieldTable() {
    const fs = paging.fields;
    return el("table", { class: "grid" },
      el("tr", {}, el("th", { text: "bits" }), el("th", { text: "field" }), el("th", { class: "num", text: "value" }), el("th", { text: "binary" })),
      fs.map((f, i) => el("tr", { data: { field: f.name } },
        el("td", {}, el("span", { class: "sw", style: { display: "inline-block", width: "11px", height: "11px", background: fieldColor(i), marginRight: "6px", border: "1px solid #0002" } }),
          f.hi === f.lo ? "bit " + f.hi : f.hi + "\u2013" + f.lo),
        el("td", { text: f.name + (f.level !== null && f.level !== undefined && !/level|\[/.test(f.name) ? " (level " + f.level + ")" : "") }),
        el("td", { class: "num mono", data: { k: "field-" + i }, text: f.level === null || f.level === undefined ? hex(f.value) + " (" + f.value + ")" : String(f.value) }),
        el("td", { class: "mono", text: bitsOf(BigInt(f.value), f.hi - f.lo, 0) }))));
  }

  // ---- one entry: its table around it, its bits, what it means ----
  function entryLayout(d) {
    const colors = { flag: "#dbe8ff", address: "#d7f2d0", reserved: "#fbe7e4", ignored: "#f1f2f4" };
    const raw = d.layout.reduce((acc, f) => acc | (BigInt(f.value) << BigInt(f.lo)), 0n);
    const fields = d.layout.map(f => ({ name: f.name, hi: f.hi, lo: f.lo, color: colors[f.kind],
      dim: f.kind === "ignored", title: f.name + " (" + f.kind + "): " + (f.hi === f.lo ? "bit " + f.hi : "bits " + f.hi + "-" + f.lo) + " = " + hex(f.value) }));
    return el("div", { class: "scroll" }, bitRow(raw, fields, { key: "entry-bits" }),
      legend([["#dbe8ff", "flag"], ["#d7f2d0", "address / frame number"], ["#fbe7e4", "reserved (must be 0)"], ["#f1f2f4", "ignored by the hardware"]]));
  }

  function flagsExplained(d) {
    const on = d.layout.filter(f => f.kind === "flag").reverse();
    return el("div", { class: "small", style: { margin: "6px 0" } }, "flags, bit 0 first: ", on.map(f =>
      el("span", { class: "pill " + (f.value ? "info" : "plain"), style: { marginRight: "4px" }, title: "bit " + f.lo, text: f.name + "=" + f.value })));
  }

  function tableWindow(step, d) {
    const rows = [];
    const first = d.window.length ? d.window[0].index : 0;
    if (first > 0) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "\u22ee " + first + " entries above" })));
    for (const w of d.window) {
      const cur = w.index === step.index;
      rows.push(el("tr", { class: cur ? "cur" : "" },
        el("td", { class: "num mono", text: "[" + w.index + "]" }),
        el("td", { class: "mono", text: w.addr }),
        el("td", { class: "mono", text: w.raw }),
        el("td", { text: kindText[w.kind] + (w.bits.length ? " (" + w.bits.join(" ") + ")" : "") })));
    }
    const lastShown = d.window.length ? d.window[d.window.length - 1].index : 0;
    if (lastShown + 1 < d.entries) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "\u22ee " + (d.entries - lastShown - 1) + " entries below" })));
    return el("table", { class: "grid" },
      el("tr", {}, el("th", { text: "index" }), el("th", { text: "entry address" }), el("th", { text: "raw entry" }), el("th", { text: "meaning" })),
      rows);
  }

  // ---- the steps of a translation ----
  const steps = [];
  const vpnNote = () => {
    const shift = BigInt(Math.log2(F.page_size));
    return "page number " + hex(va >> shift) + " (the address without its " + Math.log2(F.page_size) + " offset bits)";
  };

  if (MODE !== "paging") {
    (R.steps || []).forEach((line, i) => steps.push({
      title: "Segmentation, step " + (i + 1),
      render: () => segmentView(i),
    }));
  }
  if (paging) {
    steps.push({ title: "Split the address into fields", render: () => splitView() });
    if (paging.fault && (!paging.walk || paging.walk.length === 0)) {
      steps.push({ title: "Address check: fault", render: () => resultView() });
    } else if (paging.walk) {
      steps.push({ title: "TLB lookup", render: () => tlbView() });
      paging.walk.forEach((s, i) => steps.push({ title: "Walk: " + s.table_name + " table", render: () => walkView(i) }));
      steps.push({ title: paging.fault ? "Fault" : "Physical address", render: () => resultView() });
    } else {
      steps.push({ title: "No tables to walk", render: () => noWalkView() });
    }
  }

  function splitView() {
    return el("div", {},
      el("p", {}, "The MMU cuts the ", F.va_bits, "-bit virtual address ", el("b", { class: "mono", text: paging.va }),
        " into one index per level of the page table (root first) and the offset inside the page (",
        fmtBytes(F.page_size), " pages: ", Math.log2(F.page_size), " offset bits)."),
      el("div", { class: "scroll" }, bitRow(va, addressFields(() => true), { key: "va-bits" })),
      el("h3", { text: "The fields" }), fieldTable());
  }

  function tlbView() {
    return el("div", {},
      el("div", { class: "scroll" }, bitRow(va, addressFields(f => f.level !== null && f.level !== undefined))),
      el("p", {}, "First the MMU looks the ", vpnNote(), " up in the TLB, tagged with the current address space (ASID/PCID)."),
      el("div", { class: "note bad", data: { k: "tlb" } }, el("span", { class: "pill miss", text: "TLB miss" }), " ",
        "vmsim explain starts with an empty TLB, so the lookup misses and the hardware walks the page tables from the root table at ",
        el("b", { class: "mono", text: paging.walk.length ? paging.walk[0].table : "?" }), " (CR3 / satp)."),
      el("p", { class: "small muted", text: "vmsim run simulates the real TLB hierarchy, with hits, misses per level and fills (see vmsim run --html)." }));
  }

  function walkView(i) {
    const s = paging.walk[i], d = detail[i];
    const li = F.levels.findIndex(l => l.number === s.level);
    const lev = F.levels[li];
    const field = paging.fields[li];
    const meaning = {
      table: ["good", "valid: it points to the next-level table at ", s.next],
      leaf: ["good", "valid leaf: it maps a " + (lev.leaf_page_size ? fmtBytes(lev.leaf_page_size) : "") + " page at frame address ", s.next],
      invalid: ["bad", "not present: the walk stops with a page fault", null],
      reserved: ["bad", "reserved bits are set: the walk stops with a reserved-bit fault", null],
    }[s.kind];
    return el("div", {},
      el("div", { class: "scroll" }, bitRow(va, addressFields(f => f.name === field.name))),
      el("p", {}, "The ", el("b", { text: s.table_name }), " table: the ", el("b", { text: field.name }), " bits (",
        field.hi + "\u2013" + field.lo, ") of the address give index ", el("b", { class: "mono", data: { k: "index" }, text: String(s.index) }), "."),
      el("p", { class: "mono" }, "entry address = table + index \u00d7 entry size = ", s.table, " + ", s.index, " \u00d7 ", F.entry_bytes,
        " = ", el("b", { data: { k: "entry-addr" }, text: s.entry_addr })),
      el("h3", { text: "The table in memory, around the entry read" }),
      d && d.window.length ? tableWindow(s, d) : el("p", { class: "muted", text: "(no memory image)" }),
      el("h3", {}, "The entry read: ", el("span", { class: "mono", data: { k: "raw" }, text: s.raw })),
      d ? entryLayout(d) : null, d ? flagsExplained(d) : null,
      el("div", { class: "note " + meaning[0], data: { k: "meaning" } }, meaning[1], meaning[2] ? el("b", { class: "mono", text: meaning[2] }) : null));
  }

  function resultView() {
    const p = paging;
    const out = el("div", {});
    const offBits = p.page_size ? Math.log2(p.page_size) : 0;
    out.appendChild(el("div", { class: "scroll" }, bitRow(va, addressFields(f => p.fault ? false : f.hi < offBits))));
    if (p.fault) {
      out.appendChild(el("div", { class: "note bad" },
        el("span", { class: "pill miss", data: { k: "fault-kind" }, text: p.fault.kind }), " ",
        el("span", { data: { k: "fault-detail" }, text: p.fault.detail })));
      out.appendChild(el("p", {}, "Nothing is put in the TLB. The hardware raises a page fault with the faulting address (CR2 on x86, stval on RISC-V); the operating system's fault handler decides what happens next (vmsim run simulates that kernel)."));
    } else {
      const size = BigInt(p.page_size);
      const off = va & (size - 1n);
      const frame = big(p.pa) - off;
      const inOffset = paging.fields.filter(f => f.level !== null && f.level !== undefined && f.hi < offBits).map(f => f.name);
      out.appendChild(el("p", {}, "The leaf entry maps a ", el("b", { text: fmtBytes(p.page_size) }), " page, so the low ", String(offBits),
        " bits of the address are the offset in it", inOffset.length ? " (a superpage: the " + inOffset.join(" and ") + " bits are part of the offset; the walk stopped early)" : "", "."));
      out.appendChild(el("p", { class: "mono" }, "physical address = frame + offset = ", hex(frame), " + ", hex(off), " = ",
        el("b", { data: { k: "pa" }, text: p.pa })));
      out.appendChild(el("div", { class: "note good" }, el("span", { class: "pill hit", text: "TLB fill" }), " ",
        "The TLB now caches page ", el("b", { class: "mono", text: hex(va >> BigInt(Math.log2(p.page_size))) }), " (", fmtBytes(p.page_size),
        ") \u2192 frame ", el("b", { class: "mono", text: hex(frame) }), " with rights ", el("b", { data: { k: "flags" }, text: (p.flags || []).join(" ") }),
        "; the next access to this page hits."));
      if (p.load) out.appendChild(el("p", { data: { k: "load" }, text: p.load.detail }));
    }
    return out;
  }

  function noWalkView() {
    return el("div", {},
      el("div", { class: "scroll" }, bitRow(va, addressFields(() => true))),
      el("p", {}, "No memory image was given, so only the split is shown. Give ", el("code", { text: "--mem IMAGE --root PA" }),
        " to walk real tables (byte i of the image is physical address i)."));
  }

  function segmentView(i) {
    const lines = R.steps || [];
    const box = el("div", {});
    const show = v => (v === null || v === undefined) ? "-" : String(v);
    const facts = MODE === "book"
      ? [["virtual address", show(R.va) + (R.va_bits ? " (" + R.va_bits + "-bit, top " + R.seg_bits + " bits select the segment)" : "")],
        ["segment", R.segment === null ? "-" : R.segment + (R.name ? " (" + R.name + ")" : "")],
        ["offset", show(R.offset) + (R.negative_offset !== null && R.negative_offset !== undefined ? " (negative offset " + R.negative_offset + ")" : "")],
        ["base", show(R.base)], ["size", show(R.size)], ["grows", show(R.growth)], ["permissions", show(R.perms)],
        ["physical address", R.pa || "fault", "seg-result"]]
      : [["logical address", show(R.selector) + ":" + show(R.offset)], ["segment", show(R.index)], ["base", show(R.base)],
        ["limit", show(R.limit)], ["permissions", show(R.perms)], ["linear address", R.linear || "fault", "seg-result"]];
    if (MODE === "book" && R.va_bits && R.seg_bits !== null) {
      const v = BigInt(R.va), vb = R.va_bits, sb = R.seg_bits;
      const fields = [];
      if (sb > 0) fields.push({ name: "segment", hi: vb - 1, lo: vb - sb, color: FIELD_COLORS[0], on: i === 1 });
      fields.push({ name: "offset", hi: vb - sb - 1, lo: 0, color: FIELD_COLORS[1], on: i === 2 });
      box.appendChild(el("div", { class: "scroll", style: { marginBottom: "10px" } }, bitRow(v, fields, { key: "va-bits" })));
    }
    box.appendChild(kv(facts));
    const list = el("ol", { class: "events" });
    lines.forEach((l, j) => list.appendChild(el("li", { class: j === i ? "walk" : "", style: { opacity: j <= i ? 1 : 0.35 }, data: { k: j === i ? "seg-line" : "" }, text: l })));
    box.appendChild(list);
    if (i === lines.length - 1 && R.fault) box.appendChild(el("div", { class: "note bad" }, el("span", { class: "pill miss", text: R.fault.kind }), " ", R.fault.detail));
    return box;
  }

  // ---- the page ----
  const sub = F.name + ": " + F.va_bits + "-bit virtual addresses, " + fmtBytes(F.page_size) + " pages, " + plural(F.levels.length, "level") +
    ", " + F.entry_bytes + "-byte entries, " + F.pa_bits + "-bit physical addresses";
  APP.appendChild(pageHeader(MODE === "paging" ? sub : (MODE === "book" ? "textbook segmentation" : "x86 segment descriptors") + (paging ? "; then paging: " + sub : "")));
  const summary = el("div", { class: "card", data: { k: "summary" } });
  const outcome = paging ? (paging.fault ? ["miss", "fault: " + paging.fault.kind] : paging.pa ? ["hit", "physical address " + paging.pa] : ["plain", "split only"])
    : (R.fault ? ["miss", "fault: " + R.fault.kind] : ["hit", (MODE === "book" ? "physical address " + R.pa : "linear address " + R.linear)]);
  summary.appendChild(el("h2", {}, "Result: ", el("span", { class: "pill " + outcome[0], data: { k: "outcome" }, text: outcome[1] })));
  if (paging) summary.appendChild(el("div", { class: "scroll" }, bitRow(va, addressFields(() => false), { key: "summary-bits" })));
  APP.appendChild(summary);

  const view = el("div", { data: { k: "step-view" } });
  const title = el("div", { class: "steplabel" });
  const st = new Stepper({ count: steps.length, label: i => "step " + (i + 1) + " of " + steps.length, render: i => {
    clear(view).appendChild(steps[i].render());
    title.textContent = "";
    title.appendChild(el("b", { data: { k: "step-title" }, text: steps[i].title }));
  } });
  APP.appendChild(card("Step by step", st.bar, title, view));
  APP.appendChild(pageFooter());
  st.start();
})();
