#!/usr/bin/env python3
"""The trust's central log measured on this machine (issue 20), all on loopback:

1. the DNS path's latency with shipping off and on: dnsperf at a fixed rate
   of blocked lookups (each a new row in the block log) against one box
   without [ship] and one shipping to a live PostgreSQL 15 and rsyslog,
   alternated, for several rounds;
2. how many rows a second one PostgreSQL takes from N boxes catching up at
   once (each box's block log is filled first with shipping off, then all N
   start shipping together);
3. bytes per blocked row in a box's SQLite log and in PostgreSQL, for the
   disk a school needs per year.

    bench/central.py [--boxes 1,3,6] [--rows 100000] [--rate 2000]
                     [--seconds 20] [--rounds 2] [--bin target/release/lollipop]

Run as root (PostgreSQL runs as nobody). Needs postgresql-15, rsyslog,
dnsperf and a release build (cargo build --release). Prints markdown;
docs/TRUST.md quotes a run. Bounded: about 5 minutes with the defaults.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
NOBODY = 65534


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


def as_nobody():
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def wait(what, done, limit=120):
    deadline = time.time() + limit
    while not done():
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.1)


class Postgres:
    def __init__(self, root):
        self.dir = os.path.join(root, "pg")
        os.mkdir(self.dir)
        os.chown(self.dir, NOBODY, NOBODY)
        self.port = free_port()
        subprocess.run([f"{PG_BIN}/initdb", "--auth=trust", "--username=lollipop",
                        "--encoding=UTF8", "-D", os.path.join(self.dir, "data")],
                       cwd=self.dir, preexec_fn=as_nobody, check=True,
                       stdout=subprocess.DEVNULL)
        self.process = subprocess.Popen(
            [f"{PG_BIN}/postgres", "-D", os.path.join(self.dir, "data"), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", self.dir],
            cwd=self.dir, preexec_fn=as_nobody,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait("PostgreSQL", lambda: subprocess.run(
            [f"{PG_BIN}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q"]).returncode == 0)

    def sql(self, text, database="postgres"):
        out = subprocess.run([f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "lollipop", "-d", database, "-At", "-c", text],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def url(self, database):
        return f"postgres://lollipop@127.0.0.1:{self.port}/{database}"

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


class Rsyslog:
    def __init__(self, root):
        self.dir = os.path.join(root, "rsyslog")
        os.mkdir(self.dir)
        self.port = free_port()
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(f'global(workDirectory="{self.dir}")\n'
                    'module(load="imtcp")\n'
                    f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
                    f'*.* action(type="omfile" file="{self.dir}/central.log")\n')
        self.process = subprocess.Popen(
            ["/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", os.path.join(self.dir, "pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait("rsyslog", listening)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


class Box:
    def __init__(self, root, name, binary):
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "lists"))
        with open(os.path.join(self.dir, "lists/blocked.txt"), "w") as f:
            f.write("blocked.test\n")
        self.port = free_port()
        self.binary = binary
        self.process = None

    def configure(self, ship):
        text = f"""
[server]
data_dir = "data"
default_profile = "ks2"

[[listen]]
address = "127.0.0.1:{self.port}"

[[upstream]]
address = "127.0.0.1:9"
protocol = "udp"

[[lists]]
name = "bench-blocked"
path = "lists/blocked.txt"
category = "gambling"

[limits]
per_address_qps = 0
per_network_qps = 0

[web]
enabled = false

[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]
"""
        if ship:
            text += f'\n[ship]\nschool = "{os.path.basename(self.dir)}"\n'
            for table, body in ship.items():
                text += f"\n[ship.{table}]\n{body}\n"
        with open(os.path.join(self.dir, "lollipop.toml"), "w") as f:
            f.write(text)

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--config", "lollipop.toml", "run"], cwd=self.dir,
            env={**os.environ, "RUST_LOG": "warn"},
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "a"))
        wait("the box to answer", lambda: dig(self.port))

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)

    def rows(self):
        db = sqlite3.connect(f"file:{self.dir}/data/lollipop.db?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM blocked").fetchone()[0]
        finally:
            db.close()

    def log_bytes(self):
        path = os.path.join(self.dir, "data/lollipop.db")
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def dig(port):
    out = subprocess.run(["dig", "+short", "+tries=1", "+time=1", "-p", str(port), "@127.0.0.1",
                          "ready.blocked.test"], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() != ""


def query_file(root, name, count, prefix):
    path = os.path.join(root, name)
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"{prefix}{i}.blocked.test A\n")
    return path


def dnsperf(port, queries, seconds, rate):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                          "-l", str(seconds), "-Q", str(rate), "-c", "4", "-q", "500"],
                         capture_output=True, text=True, check=True).stdout
    avg = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)", out)
    sd = re.search(r"Latency StdDev \(s\):\s+([\d.]+)", out)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    return {"avg_ms": float(avg.group(1)) * 1000, "max_ms": float(avg.group(3)) * 1000,
            "sd_ms": float(sd.group(1)) * 1000, "qps": float(qps.group(1)),
            "lost": int(lost.group(1))}


def fill(box, queries, rows):
    """Asks `rows` different blocked names once each, as fast as the box answers."""
    subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(box.port), "-d", queries,
                    "-n", "1", "-c", "4", "-q", "200"], capture_output=True, check=True)
    time.sleep(1.5)  # the block log commits every 200 ms


def latency(args, root, pg, rsyslog):
    print(f"\n## DNS latency, shipping off and on ({args.rate} blocked lookups/s, "
          f"{args.seconds} s, {args.rounds} rounds)\n")
    off = Box(root, "latency-off", args.bin)
    off.configure(None)
    pg.sql("CREATE DATABASE latency")
    on = Box(root, "latency-on", args.bin)
    on.configure({"postgres": f'url = "{pg.url("latency")}"',
                  "syslog": f'address = "127.0.0.1:{rsyslog.port}"'})
    names = query_file(root, "latency-queries", args.rate * args.seconds * (args.rounds + 1), "l")
    for box in (off, on):
        box.start()
        # Warm-up, and the shipping box past its 12 s settle, shipping.
        dnsperf(box.port, names, 15, args.rate)
    print("| round | shipping | avg ms | sd ms | max ms | queries/s | lost |")
    print("|---|---|---|---|---|---|---|")
    results = {"off": [], "on": []}
    for round in range(args.rounds):
        for label, box in (("off", off), ("on", on)):
            r = dnsperf(box.port, names, args.seconds, args.rate)
            results[label].append(r)
            print(f"| {round + 1} | {label} | {r['avg_ms']:.3f} | {r['sd_ms']:.3f} | "
                  f"{r['max_ms']:.1f} | {r['qps']:.0f} | {r['lost']} |")
    shipped = pg.sql("SELECT count(*) FROM blocked", "latency")
    print(f"\nrows in PostgreSQL from the shipping box during the run: {shipped}; "
          f"rows in its block log: {on.rows()}")
    for box in (off, on):
        box.stop()
    for label in ("off", "on"):
        mean = sum(r["avg_ms"] for r in results[label]) / len(results[label])
        print(f"- shipping {label}: mean of average latencies {mean:.3f} ms")


def throughput(args, root, pg):
    print(f"\n## Rows a second one PostgreSQL takes from N boxes catching up at once "
          f"({args.rows} blocked rows per box)\n")
    print("| boxes | rows | seconds from first row to last | rows/s |")
    print("|---|---|---|---|")
    sizes = None
    for n in args.boxes:
        database = f"fleet{n}"
        pg.sql(f"CREATE DATABASE {database}")
        boxes = [Box(root, f"fleet{n}-box{i}", args.bin) for i in range(n)]
        for i, box in enumerate(boxes):
            box.configure(None)
            box.start()
            fill(box, query_file(root, f"fill-{n}-{i}", args.rows, f"f{n}x{i}x"), args.rows)
            box.stop()
        total = sum(box.rows() for box in boxes)
        for box in boxes:
            box.configure({"postgres": f'url = "{pg.url(database)}"'})
        for box in boxes:
            box.start()
        count = lambda: int(pg.sql("SELECT count(*) FROM blocked", database) or 0) \
            if pg.sql("SELECT to_regclass('blocked')", database) else 0
        wait("the first row", lambda: count() > 0, limit=300)
        first = time.time()
        wait("every row", lambda: count() >= total, limit=600)
        took = time.time() - first
        print(f"| {n} | {total} | {took:.1f} | {total / took:.0f} |")
        sqlite_bytes = sum(box.log_bytes() for box in boxes) / total
        pg_bytes = float(pg.sql("SELECT pg_total_relation_size('blocked')::float / count(*) "
                                "FROM blocked", database))
        sizes = (sqlite_bytes, pg_bytes)
        for box in boxes:
            box.stop()
    print("\n## Bytes per blocked row\n")
    print(f"- in a box's block log (SQLite, file and WAL, with indexes): {sizes[0]:.0f}")
    print(f"- in PostgreSQL (table, indexes and TOAST): {sizes[1]:.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", default="1,3,6")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bin", default="target/release/lollipop")
    args = parser.parse_args()
    args.boxes = [int(n) for n in args.boxes.split(",")]
    args.bin = os.path.abspath(args.bin)
    if os.geteuid() != 0:
        sys.exit("run as root: PostgreSQL is started as nobody")
    for tool in ("dnsperf", "dig", f"{PG_BIN}/initdb", "/usr/sbin/rsyslogd", args.bin):
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit(f"{tool} is missing (apt-get install dnsperf dnsutils postgresql-15 "
                     "rsyslog; cargo build --release)")
    root = tempfile.mkdtemp(prefix="lollipop-central-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    rsyslog = Rsyslog(root)
    try:
        print(f"# Central log bench ({time.strftime('%Y-%m-%d %H:%M')}, "
              f"{os.cpu_count()} cores, `bench/central.py {' '.join(sys.argv[1:])}`)")
        latency(args, root, pg, rsyslog)
        throughput(args, root, pg)
    finally:
        rsyslog.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
