#!/usr/bin/env python3
"""Turns bench/compare.sh's measurements into docs/bench/results.md (a table
per dnsperf client shape, Lollipop's lead over the best peer per shape, the
targets of issue #6 met or missed, the conditions) and qps.svg (a plot).

    bench/report.py --runs runs.tsv --latency latency.tsv --servers servers.tsv --out docs/bench \
        --note "..." --command "bench/compare.sh" [--compile "..."] [--failed "..."]

runs.tsv has one line per dnsperf run: shape, server, round, queries/s,
server CPU-seconds, lost, sent, mean latency (s) and, where read, the
server's system CPU-seconds (the kernel's share). latency.tsv has one line per
server and shape at half of Lollipop's peak: shape, server, answers, mean,
p50, p90, p99, p99.9 (s). Two rows of each are references, never peers:
"udp-floor" (the UDP path alone) and "nsd" (NSD asked directly).
"""
import argparse
import os
import statistics
from collections import defaultdict

# Measured beside the servers, never compared with them as peers.
REFERENCES = {
    "udp-floor": "the floor: the UDP path alone",
    "nsd": "NSD asked directly",
}

COLOURS = {
    "lollipop": "#d6336c",
    "unbound": "#1c7ed6",
    "dnsmasq": "#37b24d",
    "kresd": "#f59f00",
    "pdns-recursor": "#7048e8",
    "dnsdist": "#0ca678",
}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as rows:
        return [line.rstrip("\n").split("\t") for line in rows if line.strip()]


def summarise(runs, latency, servers):
    """{shape: {server: figures}}, shapes and servers in the order they ran."""
    shapes = {}
    for shape in dict.fromkeys(row[0] for row in runs):
        shapes[shape] = summarise_shape(
            [row[1:] for row in runs if row[0] == shape], [row[1:] for row in latency if row[0] == shape], servers
        )
    return shapes


def summarise_shape(runs, latency, servers):
    by_server = defaultdict(list)
    for server, _round, qps, cpu, lost, sent, mean, *system in runs:
        kernel = float(system[0]) if system else None
        by_server[server].append((float(qps), float(cpu), int(lost), int(sent), float(mean), kernel))
    half = {row[0]: (int(row[1]), *map(float, row[2:7])) for row in latency if len(row) >= 7}
    info = {row[0]: (float(row[1]), float(row[2]), float(row[3])) for row in servers}
    table = {}
    for server, rows in by_server.items():
        qps = [r[0] for r in rows]
        per_cpu = [(r[3] - r[2]) / r[1] for r in rows if r[1] > 0]
        table[server] = {
            "qps": statistics.median(qps),
            "qps_min": min(qps),
            "qps_max": max(qps),
            "cpu": statistics.median(r[1] for r in rows),
            "per_cpu": statistics.median(per_cpu) if per_cpu else 0.0,
            "per_cpu_min": min(per_cpu) if per_cpu else 0.0,
            "per_cpu_max": max(per_cpu) if per_cpu else 0.0,
            "us_per_query": 1e6 / statistics.median(per_cpu) if per_cpu else 0.0,
            # The kernel's part of the CPU per query, the same runs' median.
            "kernel_us": statistics.median(r[5] * 1e6 / (r[3] - r[2]) for r in rows if r[5] is not None and r[3] > r[2])
            if any(r[5] is not None and r[3] > r[2] for r in rows)
            else None,
            "lost": sum(r[2] for r in rows),
            "sent": sum(r[3] for r in rows),
            "mean_ms": statistics.median(r[4] for r in rows) * 1000,
            "half": half.get(server),
            "startup": info.get(server, (0, 0, 0))[0],
            "rss_start": info.get(server, (0, 0, 0))[1],
            "rss_after": info.get(server, (0, 0, 0))[2],
        }
    return table


def markdown(shapes, note, command, compile_report, failed):
    lines = []
    for shape, table in shapes.items():
        lines += [
            f"### dnsperf `{shape}`",
            "",
            "| server | queries/s median (range) | server CPU-s per run | queries per CPU-second (range) "
            "| CPU µs per query | of which the kernel | mean latency at peak | lost |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for server, t in table.items():
            # A CPU time that could not be read is shown as missing, never as free.
            cpu = (
                f"{t['cpu']:.2f} | {t['per_cpu']:,.0f} ({t['per_cpu_min']:,.0f}–{t['per_cpu_max']:,.0f}) "
                f"| {t['us_per_query']:.1f}"
                if t["per_cpu"] > 0
                else "– | – | –"
            )
            kernel = f"{t['kernel_us']:.1f}" if t["per_cpu"] > 0 and t["kernel_us"] is not None else "–"
            cpu += f" | {kernel}"
            lines.append(
                f"| {label(server)} | {t['qps']:,.0f} ({t['qps_min']:,.0f}–{t['qps_max']:,.0f}) | {cpu} "
                f"| {t['mean_ms']:.3f} ms | {t['lost']:,} of {t['sent']:,} |"
            )
        lines += ["", lead(table), ""]
    lines += [
        "### Latency in normal use: half of Lollipop's peak, dnsperf on the same cores",
        "",
        "Two references are measured the same way: the floor (`examples/udp_floor.rs`, Lollipop's "
        "batched UDP receive and send with no DNS work) and NSD, the upstream, asked directly (answers "
        "from memory with no cache and no policy). Their tail is what dnsperf and this machine allow.",
        "",
    ]
    for shape, table in shapes.items():
        lines += [
            f"dnsperf `{shape}`:",
            "",
            "| server | answers | mean | p50 | p90 | p99 | p99.9 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        rows = [(label(server), t["half"]) for server, t in table.items()]
        for server, half in rows:
            if not half or not half[0]:
                lines.append(f"| {server} | – | – | – | – | – | – |")
                continue
            n, mean, p50, p90, p99, p999 = half
            lines.append(
                f"| {server} | {n:,} | {mean * 1000:.3f} ms | {p50 * 1000:.3f} ms | {p90 * 1000:.3f} ms "
                f"| {p99 * 1000:.3f} ms | {p999 * 1000:.3f} ms |"
            )
        lines.append("")
    first = next(iter(shapes.values()), {})
    lines += [
        "### Memory and start-up",
        "",
        "| server | RSS after list load | RSS after the runs | start-up to first blocked answer |",
        "|---|---:|---:|---:|",
    ]
    for server, t in first.items():
        if server in REFERENCES:
            continue
        lines.append(f"| {server} | {t['rss_start']:.1f} MB | {t['rss_after']:.1f} MB | {t['startup']:.3f} s |")
    lines += [
        "",
        "Lollipop runs as shipped (name rules, time rules, DNSSEC, response cache and block log at their "
        "defaults) except that its per-client limits are off (`[limits]` `per_address_qps = 0`, "
        "`per_network_qps = 0`): dnsperf asks from one address. Each peer is configured as its own "
        "documentation recommends ([peers.md](peers.md)). RSS of Knot Resolver is the sum over its processes.",
        "",
    ]
    if failed.strip():
        lines += [f"Not measured: {failed.strip().rstrip(';')}.", ""]
    lines += ["Targets (issues 6 and 21), this run:", ""]
    lines += [f"- {line}" for line in targets(shapes)]
    lines += ["", f"Conditions: {note}.", ""]
    if compile_report:
        lines += [f"Lollipop's list compile (ahead of time, not in start-up): {compile_report.strip()}", ""]
    lines += [f"Command: `{command.strip()}`", ""]
    return "\n".join(lines)


def label(server):
    return REFERENCES.get(server, server)


def lead(table):
    """Lollipop's queries per CPU-second against the best peer's, with both ranges."""
    me = table.get("lollipop")
    peers = [p for p in table if p != "lollipop" and p not in REFERENCES and table[p]["per_cpu"] > 0]
    if not me or not peers:
        return "Lollipop against the best peer: not measured."
    best = max(peers, key=lambda p: table[p]["per_cpu"])
    ratio = me["per_cpu"] / table[best]["per_cpu"]
    overlap = me["per_cpu_min"] <= table[best]["per_cpu_max"] and table[best]["per_cpu_min"] <= me["per_cpu_max"]
    return (
        f"Lollipop against the best peer ({best}) in queries per CPU-second: {ratio:.2f}× "
        f"({me['us_per_query']:.1f} against {table[best]['us_per_query']:.1f} CPU µs per query)"
        + ("; the ranges over the rounds overlap, so the difference is within the noise." if overlap else ".")
    )


def targets(shapes):
    first = next(iter(shapes.values()), {})
    me = first.get("lollipop")
    if not me:
        return ["Lollipop was not measured."]
    out = []

    def verdict(ok):
        return "met" if ok else "**missed**"

    for shape, table in shapes.items():
        mine = table.get("lollipop")
        peers = [p for p in table if p != "lollipop" and p not in REFERENCES and table[p]["per_cpu"] > 0]
        if mine and peers:
            best = max(peers, key=lambda p: table[p]["per_cpu"])
            ratio = mine["per_cpu"] / table[best]["per_cpu"]
            beside = f" (CPU µs per query: Lollipop {mine['us_per_query']:.1f}, {best} {table[best]['us_per_query']:.1f}"
            for ref in REFERENCES:
                if ref in table and table[ref]["us_per_query"] > 0:
                    beside += f", {label(ref)} {table[ref]['us_per_query']:.1f}"
            beside += ")"
            out.append(
                f"queries per CPU-second ≥ 1.2× the best peer ({best}), `{shape}`: {ratio:.2f}×{beside} — "
                f"{verdict(ratio >= 1.2)}"
            )
    peers = [p for p in first if p != "lollipop" and p not in REFERENCES]
    if peers:
        best = max(peers, key=lambda p: first[p]["qps"])
        ok = me["qps"] >= first[best]["qps"]
        out.append(
            f"raw queries/s not below any peer: {me['qps']:,.0f} vs best peer {best} "
            f"{first[best]['qps']:,.0f} — {verdict(ok)}"
        )
    out.append(
        f"RSS after loading the list ≤ 40 MB: {me['rss_start']:.1f} MB — {verdict(me['rss_start'] <= 40)}; "
        f"after the runs, with the whole query mix in the response cache and the block log busy, ≤ 40 MB: "
        f"{me['rss_after']:.1f} MB — {verdict(me['rss_after'] <= 40)}"
    )
    out.append(f"start-up to the first blocked answer < 0.5 s: {me['startup']:.3f} s — {verdict(me['startup'] < 0.5)}")
    for shape, table in shapes.items():
        mine = table.get("lollipop")
        if mine and mine["half"] and mine["half"][0]:
            p99 = mine["half"][4] * 1000
            refs = [f"{label(r)} {table[r]['half'][4] * 1000:.3f} ms" for r in REFERENCES
                    if r in table and table[r]["half"] and table[r]["half"][0]]
            beside = f" ({', '.join(refs)})" if refs else ""
            out.append(
                f"p99 latency at half of Lollipop's peak < 1 ms, `{shape}`: {p99:.3f} ms{beside} — {verdict(p99 < 1)}"
            )
    return out


def bars(title, values, x0, y0, width, unit):
    """One horizontal bar chart: (label, value, low, high) rows."""
    top = max((v[3] or v[1]) for v in values) or 1
    parts = [f'<text x="{x0}" y="{y0}" font-size="15" font-weight="bold">{title}</text>']
    for i, (label, value, low, high) in enumerate(values):
        y = y0 + 14 + i * 34
        w = width * value / top
        parts.append(f'<text x="{x0}" y="{y + 17}" font-size="13">{label}</text>')
        parts.append(
            f'<rect x="{x0 + 110}" y="{y}" width="{w:.1f}" height="24" fill="{COLOURS.get(label, "#868e96")}"/>'
        )
        if high:
            lx, hx = x0 + 110 + width * low / top, x0 + 110 + width * high / top
            parts.append(f'<line x1="{lx:.1f}" y1="{y + 12}" x2="{hx:.1f}" y2="{y + 12}" stroke="#212529" stroke-width="1.5"/>')
            for x in (lx, hx):
                parts.append(f'<line x1="{x:.1f}" y1="{y + 6}" x2="{x:.1f}" y2="{y + 18}" stroke="#212529" stroke-width="1.5"/>')
        parts.append(f'<text x="{x0 + 116 + width * max(value, high or 0) / top:.1f}" y="{y + 17}" font-size="12">{value:,.0f} {unit}</text>')
    return parts, y0 + 14 + len(values) * 34


def svg(shapes, note):
    width = 520
    parts = []
    y = 30
    charts = []
    for shape, table in shapes.items():
        servers = [(s, t) for s, t in table.items() if s not in REFERENCES]
        charts.append((f"Queries per second, dnsperf {shape} (median, range over rounds)",
                       [(s, t["qps"], t["qps_min"], t["qps_max"]) for s, t in servers], "q/s"))
        charts.append((f"Queries per CPU-second of the server, dnsperf {shape}",
                       [(s, t["per_cpu"], t["per_cpu_min"], t["per_cpu_max"]) for s, t in servers], "q/CPU-s"))
    first = next(iter(shapes.values()), {})
    charts.append(("Resident memory with the list loaded",
                   [(s, max(t["rss_start"], t["rss_after"]), 0, 0) for s, t in first.items() if s not in REFERENCES], "MB"))
    for title, values, unit in charts:
        if not values:
            continue
        chunk, y = bars(title, values, 20, y, width, unit)
        parts += chunk
        y += 36
    short = note if len(note) < 140 else note[:137] + "…"
    parts.append(f'<text x="20" y="{y}" font-size="10" fill="#495057">{short.replace("&", "&amp;").replace("<", "&lt;")}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 260}" height="{y + 16}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>' + "".join(parts) + "</svg>\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True)
    parser.add_argument("--latency", required=True)
    parser.add_argument("--servers", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--command", default="bench/compare.sh")
    parser.add_argument("--compile", default="")
    parser.add_argument("--failed", default="", help="servers left out, and why")
    args = parser.parse_args()
    shapes = summarise(read_tsv(args.runs), read_tsv(args.latency), read_tsv(args.servers))
    os.makedirs(args.out, exist_ok=True)
    text = markdown(shapes, args.note, args.command, args.compile, args.failed)
    with open(os.path.join(args.out, "results.md"), "w") as out:
        out.write("# Lollipop side by side: latest run\n\n" + text)
    with open(os.path.join(args.out, "qps.svg"), "w") as out:
        out.write(svg(shapes, args.note))
    print(text)


if __name__ == "__main__":
    main()
