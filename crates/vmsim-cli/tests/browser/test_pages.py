#!/usr/bin/env python3
"""Browser tests of vmsim's --html pages, in a real (headless) Chromium.

Each kind of page is written by the vmsim binary under test, loaded from a
file:// URL, and checked against the JSON the same command prints with
--json: rendered values, the stepper (buttons, keyboard, the URL fragment),
no script error, nothing fetched from the network. Screenshots go to
$SCREENSHOTS (default target/html-screenshots).

Usage: VMSIM=target/release/vmsim python3 test_pages.py [NAME...]
Needs the `playwright` Python package and Debian's chromium
(CHROMIUM, default /usr/bin/chromium); tests/browser/run.sh installs both.
"""

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[4]
VMSIM = os.environ.get("VMSIM", str(ROOT / "target" / "release" / "vmsim"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SCREENSHOTS", str(ROOT / "target" / "html-screenshots")))
DATA = ROOT / "crates" / "vmsim-cli" / "tests" / "data"
TRACE = ROOT / "crates" / "vmsim-trace" / "tests" / "data" / "true.lackey.zst"
# Without the background-networking flags Chromium tries to reach Google's
# services, which this machine refuses; the tests must not need a network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

WORK = Path(tempfile.mkdtemp(prefix="vmsim-html-"))
FAILURES = []


def vmsim(*args, json_out=False):
    """Runs vmsim; returns its stdout (parsed with json_out)."""
    cmd = [VMSIM, *map(str, args)] + (["--json"] if json_out else [])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    if not json_out:
        return r.stdout
    # A page embeds the document without its schema_version (the page's
    # data carries its own).
    doc = json.loads(r.stdout)
    eq(doc.pop("schema_version", None), 1, "the --json document's schema_version")
    return doc


def page_of(name, *args):
    """Writes the page of `vmsim ARGS --html` and returns its path."""
    path = WORK / f"{name}.html"
    vmsim(*args, "--html", path)
    return path


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


class Page:
    """One loaded page, with the script errors and requests it made."""

    def __init__(self, browser, path, fragment="", width=1280):
        self.path = path
        self.errors = []
        self.requests = []
        self.p = browser.new_page()
        self.p.set_viewport_size({"width": width, "height": 900})
        self.p.on("pageerror", lambda e: self.errors.append(str(e)))
        self.p.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.p.on("request", lambda r: self.requests.append(r.url))
        self.p.goto(path.as_uri() + fragment)
        self.p.wait_for_selector("[data-k=step-pos]")

    def text(self, key):
        return self.p.locator(f"[data-k={key}]").first.inner_text().strip()

    def texts(self, selector):
        return [t.strip() for t in self.p.locator(selector).all_inner_texts()]

    def step(self):
        return int(self.p.evaluate("document.body.dataset.step"))

    def hash(self):
        return self.p.evaluate("location.hash")

    def click(self, label):
        self.p.get_by_role("button", name=label).first.click()

    def key(self, k):
        self.p.keyboard.press(k)

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.p.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def data(self):
        return json.loads(self.p.locator("#vmsim-data").text_content())

    def close(self):
        eq(self.errors, [], f"{self.path.name}: script errors")
        others = [u for u in self.requests if not u.startswith("file://")]
        eq(others, [], f"{self.path.name}: requests that leave the file")
        self.p.close()


def check_stepper(pg, count):
    """Buttons, keyboard and fragment move the same stepper."""
    eq(pg.step(), 1, "first step on load")
    pg.click("next")
    eq(pg.step(), 2, "next")
    eq(pg.hash(), "#step=2", "the step is in the URL fragment")
    pg.click("prev")
    eq(pg.step(), 1, "prev")
    pg.p.locator("body").click(position={"x": 2, "y": 2})
    pg.key("ArrowRight")
    eq(pg.step(), min(2, count), "right arrow")
    pg.key("End")
    eq(pg.step(), count, "End")
    eq(pg.p.get_by_role("button", name="next").first.is_disabled(), True, "next is disabled at the end")
    pg.key("ArrowRight")
    eq(pg.step(), count, "no step past the end")
    pg.key("Home")
    eq(pg.step(), 1, "Home")
    pg.p.evaluate("location.hash = '#step=%d'" % count)
    pg.p.wait_for_function("document.body.dataset.step == '%d'" % count)
    eq(pg.step(), count, "hashchange jumps")
    jump = pg.p.get_by_label("jump to step")
    jump.fill("2")
    jump.press("Enter")
    eq(pg.step(), min(2, count), "jump box")
    pg.p.locator("body").click(position={"x": 2, "y": 2})
    pg.key("Home")


def test_explain_walk(browser):
    args = ["explain", "--arch", "sv39", "--mem", DATA / "sv39.img", "--root", "0x1000", "0x40415678"]
    want = vmsim(*args, json_out=True)
    path = page_of("explain-walk", *args)
    pg = Page(browser, path)
    eq(pg.data()["report"], want, "the page embeds the command's JSON")
    eq(pg.text("outcome"), "physical address " + want["pa"], "result")
    steps = 1 + 1 + len(want["walk"]) + 1  # split, TLB, each level, result
    check_stepper(pg, steps)
    pg.shot("explain-1-split")
    for i, w in enumerate(want["walk"]):
        pg.p.evaluate(f"location.hash = '#step={3 + i}'")
        pg.p.wait_for_function(f"document.body.dataset.step == '{3 + i}'")
        eq(pg.text("raw"), w["raw"], f"walk step {i} raw entry")
        eq(pg.text("entry-addr"), w["entry_addr"], f"walk step {i} entry address")
        eq(pg.text("index"), str(w["index"]), f"walk step {i} index")
        cur = pg.texts("tr.cur td")
        eq(cur[2], w["raw"], f"walk step {i}: the table row read is highlighted")
        pg.shot(f"explain-{3 + i}-walk-level-{w['level']}")
    pg.key("End")
    eq(pg.text("pa"), want["pa"], "physical address")
    eq(pg.text("flags"), " ".join(want["flags"]), "rights in the TLB fill")
    pg.shot("explain-5-result")
    pg.close()


def test_explain_fault(browser):
    args = ["explain", "--arch", "x86-64", "0x0000800000000000"]
    want = vmsim(*args, json_out=True)
    pg = Page(browser, page_of("explain-fault", *args), "#step=2")
    eq(pg.step(), 2, "loaded at the fragment's step")
    eq(pg.text("fault-kind"), want["fault"]["kind"], "fault kind")
    eq(pg.text("fault-detail"), want["fault"]["detail"], "fault detail")
    pg.shot("explain-fault")
    pg.close()


def test_explain_segments_escaped(browser):
    # A segment name that would end the data script if it were not escaped.
    name = '</script><script>throw new Error("PWNED")</script><!--'
    args = ["explain", "--va-bits", "14", "--segments",
            f"code=0:32K:2K,heap=1:34K:3K,{name}=3:28K:2K:down", "15360"]
    want = vmsim(*args, json_out=True)
    pg = Page(browser, page_of("explain-segments", *args))
    eq(pg.data()["report"]["name"], name, "the name survives the embedding")
    eq(pg.text("seg-result"), want["pa"], "physical address")
    check_stepper(pg, len(want["steps"]))
    pg.key("End")
    eq(pg.text("seg-line"), want["steps"][-1], "last step's line")
    pg.shot("explain-segments")
    pg.close()


def test_policy(browser):
    for policy in ["clock", "opt", "lru", "aging"]:
        args = ["policy", "--policy", policy, "--frames", "3", "--refs", "1,2,3,4,1,2,5,1,2,3,4,5"]
        want = vmsim(*args, json_out=True)
        pg = Page(browser, page_of(f"policy-{policy}", *args))
        eq(pg.text("hits"), str(want["hits"]), f"{policy} hits")
        eq(pg.text("misses"), str(want["misses"]), f"{policy} misses")
        steps = want["steps"]
        check_stepper(pg, len(steps))
        for i, s in enumerate(steps):
            eq(pg.step(), i + 1, "step")
            eq(pg.text("step-page"), str(s["page"]), f"{policy} step {i + 1} page")
            eq(pg.text("step-outcome"), "hit" if s["hit"] else "miss", f"{policy} step {i + 1} outcome")
            frames = pg.p.eval_on_selector_all("[data-k=frames] [data-page]", "es => es.map(e => e.dataset.page)")
            eq(frames, [str(f) for f in s["frames"]], f"{policy} step {i + 1} frames")
            if s["evicted"] is not None:
                eq(pg.text("step-evicted"), str(s["evicted"]), f"{policy} step {i + 1} victim")
                assert pg.text("why"), "a victim comes with a reason"
            if policy == "clock" and i == 4:
                pg.shot("policy-clock-step5")
            if i + 1 < len(steps):
                pg.click("next")
        pg.shot(f"policy-{policy}")
        pg.close()


def test_policy_trace(browser):
    args = ["policy", "--policy", "lru", "--frames", "16", TRACE, "--quiet"]
    want = vmsim(*args, json_out=True)
    pg = Page(browser, page_of("policy-trace", *args, "--trace-steps", "40"), "#step=40")
    eq(pg.step(), 40, "the page steps through --trace-steps references")
    eq(pg.text("references"), f"{want['references']:,}", "the totals cover the whole trace")
    eq(pg.text("misses"), f"{want['misses']:,}", "misses of the whole trace")
    pg.shot("policy-trace")
    pg.close()


def test_alloc(browser):
    runs = {
        "free-list": ["--heap", "100", "--base", "1000", "--fit", "best", "--header", "2",
                      "--ops", "+3,-0,+5,-1,+8,-2,+8,-3,+2,+7"],
        "buddy": ["--allocator", "buddy", "--heap", "64", "--ops", "a8,a8,a4,f0,f1"],
        "slab": ["--allocator", "slab", "--heap", "64", "--ops", "a1741,a1741,a200,f0"],
    }
    for kind, a in runs.items():
        args = ["alloc", *a]
        want = vmsim(*args, json_out=True)
        text = vmsim(*args).splitlines()
        pg = Page(browser, page_of(f"alloc-{kind}", *args))
        steps = want["steps"]
        check_stepper(pg, len(steps))
        eq(pg.text("allocations").split(" ")[0], str(want["totals"]["allocations"]), f"{kind} allocations")
        for i, s in enumerate(steps):
            eq(pg.text("op"), s["op"], f"{kind} step {i + 1} op")
            eq(pg.text("outcome"), s["outcome"], f"{kind} step {i + 1} outcome")
            lines = pg.text("text").splitlines()
            eq(lines, text[1 + 2 * i: 3 + 2 * i], f"{kind} step {i + 1}: the text output's lines")
            if kind == "free-list":
                blocks = pg.p.eval_on_selector_all("[data-k=free-list] [data-addr]",
                                                   "es => es.map(e => [+e.dataset.addr, +e.dataset.size])")
                eq(blocks, [[b["addr"], b["size"]] for b in s["free_list"]], f"step {i + 1} free list")
            if kind == "buddy":
                rows = pg.p.eval_on_selector_all("[data-k=free-lists] tr td:nth-child(4)", "es => es.map(e => e.textContent)")
                eq(rows, [" ".join(map(str, l)) if l else "-" for l in s["free_lists"]], f"step {i + 1} free lists")
            if i == 4:
                pg.shot(f"alloc-{kind}-step5")
            if i + 1 < len(steps):
                pg.click("next")
        pg.shot(f"alloc-{kind}")
        pg.close()


def test_run(browser):
    scenario = DATA / "fork-cow-swap.toml"
    args = ["run", "-q", scenario]
    want = vmsim(*args, json_out=True)
    path = page_of("run-fork-cow-swap", *args)
    pg = Page(browser, path)
    data = pg.data()
    eq(data["report"], want, "the page embeds the run's JSON report")
    eq(pg.text("references"), f"{want['references']:,}", "references")
    eq(pg.text("tlb-misses"), f"{want['tlb_misses']:,}", "TLB misses")
    steps = data["steps"]
    eq(len(steps), min(200, want["references"]), "--trace-steps default 200, or the whole run")
    # The charts: one line per series, human tick labels, labelled axes.
    series = pg.p.eval_on_selector_all("[data-k=chart-memory] path[data-series]", "es => es.map(e => e.dataset.series)")
    pids = {p for x in want["timeline"]["samples"] for p in x["resident"]}
    eq(len(series), 1 + len(pids), "frames in use and each sampled process's resident pages")
    ticks = pg.p.eval_on_selector_all("[data-k=chart-events] text[data-tick]", "es => es.map(e => e.textContent)")
    assert ticks and all("." not in t or len(t) <= 4 for t in ticks), ticks
    check_stepper(pg, len(steps))
    seen = set()
    for i, s in enumerate(steps):
        pg.p.evaluate(f"location.hash = '#step={i + 1}'")
        pg.p.wait_for_function(f"document.body.dataset.step == '{i + 1}'")
        eq(pg.text("step-n"), f"{s['n']:,}", f"step {i + 1}: reference number")
        if s["va"] is not None:
            eq(pg.text("step-va"), s["va"], f"step {i + 1}: address")
        levels = pg.p.eval_on_selector_all("[data-k=tlb-level]", "es => es.map(e => +e.dataset.level)")
        eq(levels, [t["level"] for t in s["tlb"] if t["lookups"]], f"step {i + 1}: TLB levels probed")
        actions = pg.p.eval_on_selector_all("[data-k=kernel-action]", "es => es.map(e => e.dataset.action)")
        eq(sorted(actions), sorted(s["kernel"].keys()), f"step {i + 1}: the kernel's actions")
        paging = pg.p.eval_on_selector_all("[data-k=paging-action]", "es => es.map(e => e.dataset.action)")
        eq(sorted(paging), sorted(s["paging"].keys()), f"step {i + 1}: paging actions")
        rows = pg.p.locator("[data-k=walk] tr[data-level]").count()
        eq(rows, len(s["walk"] or []), f"step {i + 1}: one row per walk entry")
        if s["walk"]:
            after = pg.texts("[data-k=entry-after]")
            eq(after, [w["raw_after"] for w in s["walk"]], f"step {i + 1}: entries after the reference")
            added = pg.p.eval_on_selector_all("[data-k=walk] [data-added]", "es => es.map(e => e.dataset.added)")
            want_added = [b for w in s["walk"] for b in w["bits_after"] if b not in w["bits_before"]]
            eq(added, want_added, f"step {i + 1}: bits set by the reference")
        if s["translation"]:
            eq(pg.text("step-pa"), s["translation"]["pa"], f"step {i + 1}: physical address")
        for kind, key in [("demand_zero", "kernel"), ("cow_copies", "kernel"), ("cow_reuses", "kernel"),
                          ("swap_outs", "paging"), ("swap_ins", "paging")]:
            if kind in s[key] and kind not in seen:
                seen.add(kind)
                pg.shot(f"run-step-{kind.replace('_', '-')}")
    eq(seen, {"demand_zero", "cow_copies", "cow_reuses", "swap_outs", "swap_ins"},
       "the scenario shows demand-zero, COW copy and reuse, eviction and swap-in")
    # Next and previous move between references.
    pg.key("Home")
    pg.click("next")
    eq(pg.text("step-n"), f"{steps[1]['n']:,}", "next shows the second reference")
    pg.click("prev")
    eq(pg.text("step-n"), f"{steps[0]['n']:,}", "prev shows the first again")
    pg.p.evaluate("window.scrollTo(0, 0)")
    pg.shot("run-overview")
    pg.close()


def test_run_charts(browser):
    # A longer run with eviction: the charts have many samples and two processes.
    args = ["run", "-q", "synth:zipf,pages=3000,s=0.8,refs=300K,write=0.3",
            "synth:scan,bytes=8MiB,passes=3", "--set", "memory.frames=2048", "--set", "run.quantum=5000"]
    want = vmsim(*args, json_out=True)
    pg = Page(browser, page_of("run-charts", *args, "--trace-steps", "50"))
    eq(pg.data()["report"], want, "the page embeds the run's JSON report")
    eq(len(pg.data()["steps"]), 50, "--trace-steps")
    for key in ["chart-events", "chart-memory", "chart-swap"]:
        paths = pg.p.locator(f"[data-k={key}] path[data-series]").count()
        assert paths >= 1, key
    ticks = pg.p.eval_on_selector_all("[data-k=chart-events] text[data-tick=x]", "es => es.map(e => e.textContent)")
    assert any(t[-1] in "KM" for t in ticks), ticks
    assert not any(len(t) > 5 for t in ticks), f"unreadable ticks {ticks}"
    series = pg.p.eval_on_selector_all("[data-k=chart-memory] path[data-series]", "es => es.map(e => e.dataset.series)")
    eq(len(series), 3, "frames in use and both processes' resident pages")
    pg.shot("run-charts")
    pg.close()


def main():
    names = sys.argv[1:]
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(WORK / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True)
        for name, f in tests:
            if names and not any(n in name for n in names):
                continue
            try:
                f(ctx)
                print(f"ok   {name}")
            except Exception:  # noqa: BLE001 - report every failure, then fail
                FAILURES.append(name)
                print(f"FAIL {name}")
                traceback.print_exc()
        ctx.close()
    print(f"{len(tests) - len(FAILURES)} passed, {len(FAILURES)} failed; screenshots in {SHOTS}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
