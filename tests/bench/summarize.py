#!/usr/bin/env python3
"""Summarises the samples run.sh recorded: per tool and protocol, the median (min–max) of
throughput, CPU seconds per GiB and peak RSS, with ratios to curl and to the ceilings measured
in the same run. Prints Markdown; with --update FILE, replaces the part of FILE between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers (appending them if absent)."""
import argparse
import csv
import datetime
import os
import platform
import statistics
import subprocess

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
GIB = 1024**3
MIB = 1024**2
TOOLS = ["backhaul-tokio", "backhaul-blocking", "base-tokio", "base-blocking", "curl", "aria2c",
         "aria2c-x4"]
CEILINGS = {
    "dd": "dd of /dev/zero to the same tmpfs (1 MiB blocks)",
    "tcp": "raw TCP loopback copy (sendfile → recv into a 256 KiB buffer, discarded)",
    "curl-null": "nginx → curl -o /dev/null (HTTP(S) without a file write)",
}


def load(path):
    by_key = {}
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            by_key.setdefault((row["tool"], row["proto"]), []).append(row)
    return by_key


def stats(values):
    return statistics.median(values), min(values), max(values)


def figures(rows, size):
    """Throughput (MB/s, 10^6 bytes), CPU s/GiB, RSS MiB: each (median, min, max)."""
    tput = stats([size / float(r["wall_s"]) / 1e6 for r in rows])
    cpu = stats([(float(r["user_s"]) + float(r["sys_s"])) * GIB / size for r in rows])
    rss = stats([int(r["rss_kib"]) / 1024 for r in rows])
    return tput, cpu, rss


def fmt(triple, digits=0):
    med, lo, hi = triple
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"


def product(tool):
    return {"backhaul-tokio": "backhaul", "backhaul-blocking": "backhaul", "base-tokio": "backhaul",
            "base-blocking": "backhaul", "aria2c": "aria2",
            "aria2c-x4": "aria2", "curl": "curl", "curl-null": "curl"}.get(tool, "")


def tables(args):
    size = args.size
    data = {key: figures(rows, size) for key, rows in load(args.samples).items()}
    ciphers = {}
    if args.ciphers and os.path.exists(args.ciphers):
        with open(args.ciphers) as f:
            for line in f:
                name, _, cipher = line.rstrip("\n").partition("\t")
                ciphers.setdefault(name, set()).add(cipher)
    dd = data.get(("dd", "-"), (None,))[0]
    tcp = data.get(("tcp", "-"), (None,))[0]
    out = []
    out.append("| tool | proto | throughput MB/s | × curl | × dd | × tcp | CPU s/GiB | CPU × curl "
               "| peak RSS MiB | TLS (nginx's log) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    protos = sorted({p for (_, p) in data if p != "-"}, key=lambda p: (p != "http", p))
    for proto in protos:
        curl = data.get(("curl", proto))
        for tool in TOOLS:
            if (tool, proto) not in data:
                continue
            tput, cpu, rss = data[(tool, proto)]
            tls = "; ".join(sorted(ciphers.get(product(tool), []))) if proto == "https" else ""
            out.append(
                f"| {tool} | {proto} | {fmt(tput)} | {ratio(tput[0], curl[0][0]) if curl else '–'} "
                f"| {ratio(tput[0], dd[0]) if dd else '–'} | {ratio(tput[0], tcp[0]) if tcp else '–'} "
                f"| {fmt(cpu, 2)} | {ratio(cpu[0], curl[1][0]) if curl else '–'} | {fmt(rss, 1)} | {tls} |")
    out.append("")
    out.append("Ceilings, measured in the same run:")
    out.append("")
    out.append("| ceiling | proto | throughput MB/s | what |")
    out.append("|---|---|---|---|")
    for tool, what in CEILINGS.items():
        for proto in ["-"] + protos:
            if (tool, proto) in data:
                out.append(f"| {tool} | {proto} | {fmt(data[(tool, proto)][0])} | {what} |")
    if args.restart and os.path.exists(args.restart):
        with open(args.restart) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows:
            out.append("")
            out.append("Bytes re-fetched after a kill -9 at half the file (HTTP):")
            out.append("")
            out.append("| runtime | on disk at the kill | re-fetched |")
            out.append("|---|---|---|")
            for r in rows:
                out.append(f"| {r['runtime']} | {int(r['killed_at']) / MIB:.1f} MiB "
                           f"| {int(r['refetched']) / MIB:.1f} MiB |")
    return "\n".join(out)


def environment(args):
    def first_line(cmd):
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (res.stdout or res.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rev = first_line(["git", "-C", os.path.dirname(__file__), "describe", "--always", "--dirty"])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        f"- {when}; backhaul {rev}; {args.size // MIB} MiB file; {args.runs} run(s) of each, alternating",
        f"- {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs; "
        f"load average {args.load}",
        f"- {first_line(['curl', '--version'])}; {first_line(['aria2c', '--version'])}; "
        f"{first_line(['nginx', '-v'])}",
        f"- reproduce: `{args.env} tests/bench/{args.command}`",
    ])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--ciphers")
    p.add_argument("--restart")
    p.add_argument("--load", default="?")
    p.add_argument("--command", default="run.sh")
    p.add_argument("--env", default="")
    p.add_argument("--update")
    args = p.parse_args()
    body = "\n".join([BEGIN, "", environment(args), "", tables(args), "", END])
    if not args.update:
        print(body)
        return
    text = open(args.update).read() if os.path.exists(args.update) else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    with open(args.update, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
