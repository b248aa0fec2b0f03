"""Reads the JSON reports of `streamgate bench` written by bench/compare.sh.

  report.py line REPORT.json            one line about a run, for the console
  report.py verdict REPORT.json RATE    exit 0 if the server kept up with RATE msg/s
  report.py render RUN_DIR [--doc BENCHMARKS.md --svg compare.svg --command CMD]
                                        tables (stdout, and into the doc's last section)
                                        and the chart

Standard library only.
"""

import json
import math
import os
import sys
from html import escape

SERVERS = ["nchan", "pushpin", "streamgate"]
NAMES = {"nchan": "Nchan", "pushpin": "Pushpin", "streamgate": "streamgate"}
COLORS = {"nchan": "#2a9d8f", "pushpin": "#e76f51", "streamgate": "#264653"}
HEADING = "## Side by side: Nchan, Pushpin, streamgate"
BEGIN = "<!-- compare.sh: begin (generated; the text outside these markers is kept) -->"
END = "<!-- compare.sh: end -->"
# A step counts as kept up when the publish rate reached and the deliveries per second are
# both at least this share of the target.
KEEP_UP = 0.9


def load(path):
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return report or None


# ------------------------------------------------------------------ derived figures ----


def achieved_rate(r):
    secs = r.get("publish_secs")
    return r["published"] / secs if secs else None


def connected(r):
    return r["connected"] - r["dropped"]


def accepted(r):
    """Connections accepted, and how many failed or were later ended by the server."""
    notes = [f"{r[k]:,} {word}" for k, word in (("connect_failed", "failed"), ("dropped", "dropped")) if r[k]]
    return f"{r['connected']:,}" + (f" ({', '.join(notes)})" if notes else "")


def server(r, key):
    return (r.get("server") or {}).get(key)


def latency(r, key):
    lat = r.get("latency_us")
    return lat[key] / 1000 if lat else None


def verdict(r, rate):
    """None when the server kept up with `rate`, else why not."""
    if r is None:
        return "no report"
    if r.get("timed_out"):
        return "timed out"
    if connected(r) < r["subscribers"]:
        return f"{r['subscribers'] - connected(r)} subscribers not connected"
    if r["publish_failed"]:
        return f"{r['publish_failed']} publishes failed"
    if r["published"] < r["messages"]:
        return f"{r['published']} of {r['messages']} published"
    if r["lost"]:
        return f"{r['lost']:,} deliveries lost"
    achieved = achieved_rate(r) or 0
    if achieved < KEEP_UP * rate:
        return f"published {achieved:,.0f} msg/s"
    target = rate * r["subscribers_at_publish"]
    delivered = r.get("delivered_per_sec") or 0
    if delivered < KEEP_UP * target:
        return f"delivered {delivered:,.0f}/s of {target:,}/s"
    return None


def fmt(value, spec=",.0f", unit=""):
    if value is None:
        return "–"
    return f"{value:{spec}}{unit}"


def ms(value):
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def line(r):
    if r is None:
        return "  no report"
    parts = [f"connected {connected(r):,}/{r['subscribers']:,}"]
    if r["messages"]:
        parts += [
            f"published {r['published']:,} at {fmt(achieved_rate(r))} msg/s",
            f"delivered/s {fmt(r.get('delivered_per_sec'))}",
            f"p99 {ms(latency(r, 'p99'))}",
            f"lost {r['lost']:,}",
            f"CPU {fmt(server(r, 'cpu_us_per_delivery'), '.2f')} us/delivery",
        ]
    else:
        parts.append(f"{fmt(server(r, 'kib_per_connection'), '.1f')} KiB/connection")
    if r["errors"]:
        parts.append(f"first error: {r['errors'][0]}")
    return "  " + ", ".join(parts)


# ------------------------------------------------------------------ collecting ---------


def collect(run_dir, meta):
    """{run: {server: {"idle": r, "fanout": [(rate, r)], "latency": r}}}"""
    runs = {}
    for run in range(1, meta["runs"] + 1):
        base = os.path.join(run_dir, f"run{run}")
        per_server = {}
        for name in meta["servers"]:
            d = os.path.join(base, name)
            steps = []
            for rate in meta["params"]["fanout_rates"]:
                r = load(os.path.join(d, f"fanout-{rate}.json"))
                if r is not None or os.path.exists(os.path.join(d, f"fanout-{rate}.json")):
                    steps.append((int(rate), r))
            per_server[name] = {
                "idle": load(os.path.join(d, "idle.json")),
                "fanout": steps,
                "latency": load(os.path.join(d, "latency.json")),
            }
        runs[run] = per_server
    return runs


def best_step(steps):
    kept = [(rate, r) for rate, r in steps if verdict(r, rate) is None]
    missed = next(((rate, r) for rate, r in steps if verdict(r, rate) is not None), None)
    return (kept[-1] if kept else None), missed


# ------------------------------------------------------------------ markdown -----------


def table(header, rows, align):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def markdown(meta, runs, command):
    p = meta["params"]
    multi = len(runs) > 1
    run_col = ["run"] if multi else []
    run_align = ["---:"] if multi else []
    servers = meta["servers"]

    def label(name, run):
        return [NAMES[name]] + ([str(run)] if multi else [])

    out = []
    out.append(
        f"Measured {meta['date']} with `{command}` on {meta['machine']}; the load tool shares "
        "the cores with the server, as in the runs above."
    )
    out.append("")
    out.append("Versions: " + "; ".join(meta["versions"][s] for s in servers) + ".")
    out.append("")
    out.append(
        "Every server runs on 127.0.0.1 with the configuration in `bench/`, and is started "
        "afresh for each scenario. Server memory and CPU are summed over all of its processes "
        "(nginx master and worker; Pushpin's runner, condure, zurl, pushpin-proxy and "
        "pushpin-handler, not its backend). Payload 64 B, publish concurrency "
        f"{p.get('publish_concurrency', 64)} (requests in flight, on kept-alive connections), "
        f"subscribers opened at most {p['connect_window']} at a time. Latency is publish "
        "request sent → marker read by the subscriber."
    )
    out.append("")

    # Idle.
    out.append(
        f"**Idle subscribers**: {p['idle_subscribers']:,} SSE subscribers held "
        f"{p['idle_hold_secs']} s (`--messages 0 --hold-secs {p['idle_hold_secs']} "
        f"--source-addrs {p['source_addrs']}`)."
    )
    out.append("")
    rows = []
    for run, per in runs.items():
        for name in servers:
            r = per[name]["idle"]
            if r is None:
                rows.append(label(name, run) + ["no report"] + ["–"] * 4)
                continue
            before, held = server(r, "rss_before_kib"), server(r, "rss_connected_kib")
            rows.append(
                label(name, run)
                + [
                    accepted(r),
                    fmt(r.get("connect_secs"), ".1f", " s"),
                    fmt(before and before / 1024, ".1f", " MiB"),
                    fmt(held and held / 1024, ".1f", " MiB"),
                    "**" + fmt(server(r, "kib_per_connection"), ".1f", " KiB") + "**",
                ]
            )
    out.append(
        table(
            ["server"] + run_col + ["connected", "connect time", "RSS before", "RSS held", "per connection"],
            rows,
            ["---"] + run_align + ["---:"] * 5,
        )
    )
    out.append("")

    # Fan-out.
    rates = ", ".join(str(x) for x in p["fanout_rates"])
    misses = p.get("fanout_misses", 1)
    out.append(
        f"**Fan-out**: {p['fanout_subscribers']:,} subscribers on one channel; every server "
        f"offered the same publish rates, {rates} msg/s, {p['step_secs']} s per step, each "
        f"step with fresh subscribers on the same server process. A step is kept up when "
        f"nothing is lost and both the publish rate reached and the deliveries per second "
        f"(first publish to last delivery) are at least {KEEP_UP:.0%} of the target; a "
        f"server's series ends after {misses} steps missed in a row. The publish round trip "
        "is how long the server took to answer a publish: a server that keeps its publishers "
        "waiting sets the rate it is offered."
    )
    out.append("")
    rows = []
    for run, per in runs.items():
        for name in servers:
            kept, missed = best_step(per[name]["fanout"])
            if kept:
                rate, r = kept
                cells = [
                    f"**{rate:,} msg/s**",
                    fmt(r.get("delivered_per_sec")),
                    ms(latency(r, "p99")),
                    fmt(server(r, "cpu_us_per_delivery"), ".2f", " µs"),
                ]
            else:
                cells = ["none", "–", "–", "–"]
            cells.append(f"{missed[0]:,} msg/s: {verdict(missed[1], missed[0])}" if missed else "none missed")
            rows.append(label(name, run) + cells)
    out.append(
        table(
            ["server"] + run_col
            + ["highest rate kept up", "deliveries/s there", "p99 there", "CPU / delivery there", "first step missed"],
            rows,
            ["---"] + run_align + ["---:"] * 4 + ["---"],
        )
    )
    out.append("")
    out.append("At equal offered rates (CPU per delivery against Nchan's at the same rate, same run):")
    out.append("")
    rows = []
    for run, per in runs.items():
        offered = sorted({rate for name in servers for rate, _ in per[name]["fanout"]})
        for rate in offered:
            steps = {name: dict(per[name]["fanout"]).get(rate, "skipped") for name in servers}
            nchan = steps.get("nchan")
            nchan_cpu = server(nchan, "cpu_us_per_delivery") if isinstance(nchan, dict) else None
            for name in servers:
                r = steps[name]
                cells = [f"{rate:,}"] + label(name, run)
                if r == "skipped":
                    rows.append(cells + [f"not run: missed {misses} steps before"] + ["–"] * 8)
                    continue
                if r is None:
                    rows.append(cells + ["no report"] + ["–"] * 8)
                    continue
                why = verdict(r, rate)
                cpu = server(r, "cpu_us_per_delivery")
                ratio = "–" if name == "nchan" or not (cpu and nchan_cpu) else f"{cpu / nchan_cpu:.2f}×"
                rows.append(
                    cells
                    + [
                        fmt(achieved_rate(r)),
                        ms(r.get("publish_latency_us", {}).get("p50", 0) / 1000 if r.get("publish_latency_us") else None),
                        fmt(r.get("delivered_per_sec")),
                        ms(latency(r, "p50")),
                        "**" + ms(latency(r, "p99")) + "**",
                        f"{r['lost']:,}",
                        "**" + fmt(cpu, ".2f", " µs") + "**",
                        ratio,
                        "yes" if why is None else f"no: {why}",
                    ]
                )
    out.append(
        table(
            ["msg/s offered", "server"] + run_col
            + ["msg/s reached", "publish round trip p50", "deliveries/s", "p50", "p99", "lost",
               "CPU / delivery", "CPU vs Nchan", "kept up"],
            rows,
            ["---:", "---"] + run_align + ["---:"] * 8 + ["---"],
        )
    )
    out.append("")

    # Latency.
    out.append(
        f"**Latency at scale**: {p['latency_subscribers']:,} subscribers, "
        f"{p['latency_messages']} messages at 1 msg/s (`--source-addrs {p['source_addrs']}`)."
    )
    out.append("")
    rows = []
    for run, per in runs.items():
        for name in servers:
            r = per[name]["latency"]
            if r is None:
                rows.append(label(name, run) + ["no report"] + ["–"] * 7)
                continue
            rows.append(
                label(name, run)
                + [
                    accepted(r),
                    f"{r['deliveries_received']:,} / {r['deliveries_expected']:,}",
                    f"{r['lost']:,}",
                    ms(latency(r, "p50")),
                    ms(latency(r, "p90")),
                    "**" + ms(latency(r, "p99")) + "**",
                    ms(latency(r, "max")),
                    fmt(server(r, "cpu_us_per_delivery"), ".2f", " µs"),
                ]
            )
    out.append(
        table(
            ["server"] + run_col
            + ["connected", "delivered / expected", "lost", "p50", "p90", "p99", "max", "CPU / delivery"],
            rows,
            ["---"] + run_align + ["---:"] * 8,
        )
    )
    out.append("")
    out.append("![Nchan, Pushpin and streamgate side by side](img/compare.svg)")
    return "\n".join(out)


def write_doc(path, body):
    with open(path) as f:
        text = f.read()
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------ chart --------------


class Svg:
    def __init__(self, width, height):
        self.width, self.height, self.parts = width, height, []

    def add(self, text):
        self.parts.append(text)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", fill="#222", rotate=None):
        tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{tr}>{escape(s)}</text>'
        )

    def line(self, x1, y1, x2, y2, stroke="#ccc", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"{d}/>'
        )

    def rect(self, x, y, w, h, fill, opacity=1.0):
        self.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}" fill-opacity="{opacity}"/>'
        )

    def render(self):
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" font-family="Helvetica, Arial, sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(self.parts)
            + "\n</svg>\n"
        )


def nice_ticks(value, count=4):
    """A round step and a top for an axis from 0 to at least `value`."""
    raw = max(value, 1e-9) / count
    exp = 10 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= raw)
    return step, step * math.ceil(max(value, 1e-9) / step)


def bar_panel(svg, x0, y0, w, h, title, unit, values, fmt_value):
    """values: [(server, run, value or None)] as horizontal bars."""
    svg.text(x0, y0 - 12, title, size=13, weight="bold")
    label_w = 96
    step, top = nice_ticks(max([v for _, _, v in values if v is not None] or [1]))
    n = max(len(values), 1)
    slot = h / n
    bar_h = min(slot * 0.7, 26)
    span = w - label_w - 60
    tick = 0.0
    while tick <= top + step / 2:
        gx = x0 + label_w + span * tick / top
        svg.line(gx, y0, gx, y0 + h, stroke="#eee")
        svg.text(gx, y0 + h + 14, f"{tick:,g}", size=10, anchor="middle", fill="#666")
        tick += step
    svg.text(x0 + label_w + span / 2, y0 + h + 30, unit, size=11, anchor="middle", fill="#444")
    multi = len({run for _, run, _ in values}) > 1
    for i, (name, run, value) in enumerate(values):
        y = y0 + i * slot + (slot - bar_h) / 2
        label = NAMES[name] + (f" (run {run})" if multi else "")
        svg.text(x0 + label_w - 8, y + bar_h / 2 + 4, label, size=11, anchor="end")
        if value is None:
            svg.text(x0 + label_w + 4, y + bar_h / 2 + 4, "no figure", size=10, fill="#999")
            continue
        bw = span * value / top
        svg.rect(x0 + label_w, y, bw, bar_h, COLORS[name], 1.0 if run == 1 else 0.55)
        svg.text(x0 + label_w + bw + 4, y + bar_h / 2 + 4, fmt_value(value), size=10, fill="#333")


def log_label(value, unit):
    if unit == " ms" and value >= 1000:
        return f"{value / 1000:g} s"
    if value >= 1e6:
        return f"{value / 1e6:g}M{unit}"
    if value >= 1e3:
        return f"{value / 1e3:g}k{unit}"
    return f"{value:g}{unit}"


def step_panel(svg, x0, y0, w, h, runs, meta, title, ylabel, value, ideal=None, unit=""):
    """One line per server and run over the fan-out steps, both axes logarithmic."""
    p = meta["params"]
    svg.text(x0, y0 - 12, title, size=13, weight="bold")
    rates = [int(x) for x in p["fanout_rates"]]
    series = []
    for run, per in runs.items():
        for name in meta["servers"]:
            points = [(rate, r, value(r)) for rate, r in per[name]["fanout"] if r and value(r)]
            series.append((run, name, points))
    values = [v for _, _, pts in series for _, _, v in pts]
    if ideal:
        values += [ideal(rates[0]), ideal(rates[-1])]
    if not values:
        svg.text(x0, y0 + 20, "no figures", size=11, fill="#999")
        return
    lo_x, hi_x = math.log10(min(rates)), math.log10(max(rates))
    lo_y = math.floor(math.log10(min(values)))
    hi_y = math.ceil(math.log10(max(values)))
    if hi_y == lo_y:
        hi_y += 1
    left, bottom = 64, 34
    pw, ph = w - left - 30, h - bottom

    def px(rate):
        return x0 + left + pw * (math.log10(rate) - lo_x) / max(hi_x - lo_x, 1e-9)

    def py(v):
        return y0 + ph - ph * (math.log10(v) - lo_y) / (hi_y - lo_y)

    for rate in rates:
        svg.line(px(rate), y0, px(rate), y0 + ph, stroke="#eee")
        svg.text(px(rate), y0 + ph + 14, f"{rate:,}", size=10, anchor="middle", fill="#666")
    svg.text(x0 + left + pw / 2, y0 + ph + 30, "publish rate asked (msg/s, log scale)", size=11, anchor="middle", fill="#444")
    for e in range(lo_y, hi_y + 1):
        svg.line(x0 + left, py(10**e), x0 + left + pw, py(10**e), stroke="#eee")
        svg.text(x0 + left - 6, py(10**e) + 4, log_label(10**e, unit), size=10, anchor="end", fill="#666")
    svg.text(x0 + 10, y0 + ph / 2, ylabel, size=11, anchor="middle", fill="#444", rotate=-90)
    if ideal:
        svg.line(px(rates[0]), py(ideal(rates[0])), px(rates[-1]), py(ideal(rates[-1])), stroke="#999", dash="4 4")
        svg.text(px(rates[-1]) - 8, py(ideal(rates[-1])) - 8, "rate × subscribers", size=10, anchor="end", fill="#888")
    for run, name, points in series:
        if not points:
            continue
        coords = " ".join(f"{px(rate):.1f},{py(v):.1f}" for rate, _, v in points)
        dash = "" if run == 1 else ' stroke-dasharray="6 3"'
        svg.add(f'<polyline points="{coords}" fill="none" stroke="{COLORS[name]}" stroke-width="2"{dash}/>')
        for rate, r, v in points:
            fill = COLORS[name] if verdict(r, rate) is None else "white"
            svg.add(
                f'<circle cx="{px(rate):.1f}" cy="{py(v):.1f}" r="4" fill="{fill}" '
                f'stroke="{COLORS[name]}" stroke-width="2"/>'
            )


def legend(svg, x, y, meta, runs):
    for i, name in enumerate(meta["servers"]):
        svg.rect(x + i * 110, y - 10, 12, 12, COLORS[name])
        svg.text(x + i * 110 + 18, y, NAMES[name], size=11)
    note = "filled point: step kept up; hollow: not kept up (the series stops there)"
    if len(runs) > 1:
        note += "; solid: run 1, dashed and pale: run 2"
    svg.text(x + len(meta["servers"]) * 110 + 10, y, note, size=10, fill="#666")


def chart(meta, runs, path):
    svg = Svg(980, 660)
    svg.text(
        20, 24,
        f"Nchan, Pushpin and streamgate, {meta['machine'].split(',')[0]}, loopback, {meta['date']}",
        size=14, weight="bold",
    )
    p = meta["params"]
    idle, lat = [], []
    for run, per in runs.items():
        for name in meta["servers"]:
            r = per[name]["idle"]
            idle.append((name, run, server(r, "kib_per_connection") if r else None))
            r = per[name]["latency"]
            lat.append((name, run, latency(r, "p99") if r else None))
    bar_panel(
        svg, 20, 70, 450, 200,
        f"Server memory per idle SSE connection ({p['idle_subscribers']:,} held)",
        "KiB per connection (less is better)", idle, lambda v: f"{v:.1f} KiB",
    )
    bar_panel(
        svg, 510, 70, 450, 200,
        f"p99 latency, {p['latency_subscribers']:,} subscribers at 1 msg/s",
        "milliseconds (less is better)", lat, ms,
    )
    subs = p["fanout_subscribers"]
    step_panel(
        svg, 20, 370, 450, 240, runs, meta,
        f"Fan-out to {subs:,} subscribers: deliveries/s", "deliveries/s (log)",
        lambda r: r.get("delivered_per_sec"), ideal=lambda rate: rate * subs,
    )
    step_panel(
        svg, 510, 370, 450, 240, runs, meta,
        f"Fan-out to {subs:,} subscribers: p99 latency", "p99 latency (log)",
        lambda r: latency(r, "p99"), unit=" ms",
    )
    legend(svg, 20, 645, meta, runs)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(svg.render())


# ------------------------------------------------------------------ main ---------------


def main(argv):
    if len(argv) >= 2 and argv[0] == "line":
        print(line(load(argv[1])))
        return 0
    if len(argv) >= 3 and argv[0] == "verdict":
        why = verdict(load(argv[1]), int(argv[2]))
        print("  kept up" if why is None else f"  not kept up: {why}")
        return 0 if why is None else 1
    if len(argv) >= 2 and argv[0] == "render":
        run_dir, opts = argv[1], dict(zip(argv[2::2], argv[3::2]))
        with open(os.path.join(run_dir, "meta.json")) as f:
            meta = json.load(f)
        runs = collect(run_dir, meta)
        body = markdown(meta, runs, opts.get("--command", "bench/compare.sh"))
        print(body)
        if "--doc" in opts:
            write_doc(opts["--doc"], body)
            print(f"\nwrote {opts['--doc']}", file=sys.stderr)
        if "--svg" in opts:
            chart(meta, runs, opts["--svg"])
            print(f"wrote {opts['--svg']}", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
