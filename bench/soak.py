#!/usr/bin/env python3
"""The soak's load and its report: drives a running Lollipop on loopback with
a bounded mix for --minutes and prints what happened.

Clients (each from its own 127.0.0.x address):
  well-behaved  127.0.0.21-24: ~25 lookups/s each, allowed and blocked names,
                one at a time, each waiting up to 2 s for its answer;
  silent        127.0.0.31: ~200 random names/s under a suffix whose servers
                never answer (fills upstream work);
  malformed     127.0.0.32: ~100 junk datagrams/s;
  flooder       127.0.0.33: as fast as one socket sends, capped at --flood-rate;
  idle TCP      127.0.0.34: --idle-tcp connections opened and left silent;
  slow TCP      127.0.0.35: one connection sending a query a byte a second;
  reloads       SIGHUP to the process every 30 s.
Every 10 s it samples the process's RSS and open descriptors.

    bench/soak.py --server 127.0.0.1:5391 --pid PID --allowed FILE --blocked FILE
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

WELL_BEHAVED = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"]


def query(ident, name, qtype=1):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def rcode_of(reply):
    return struct.unpack_from("!H", reply, 2)[0] & 0x000F


def read_names(path, limit=20000):
    names = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line.split()[-1])
            if len(names) >= limit:
                break
    return names


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.unanswered = 0
        self.servfail = 0
        self.latencies = []

    def add(self, latency, rcode):
        with self.lock:
            self.sent += 1
            if latency is None:
                self.unanswered += 1
            else:
                self.answered += 1
                self.latencies.append(latency)
                if rcode == 2:
                    self.servfail += 1


def well_behaved(address, server, names, stop, stats, rate):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.settimeout(2.0)
    ident = 0
    while not stop.is_set():
        ident = (ident + 1) & 0xFFFF
        name = random.choice(names)
        started = time.monotonic()
        sock.sendto(query(ident, name), server)
        latency, rcode = None, None
        try:
            while True:
                reply, _ = sock.recvfrom(4096)
                if len(reply) >= 12 and struct.unpack_from("!H", reply)[0] == ident:
                    latency = time.monotonic() - started
                    rcode = rcode_of(reply)
                    break
        except socket.timeout:
            pass
        stats.add(latency, rcode)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))


def sender(address, server, stop, make, rate, counter):
    """Sends make(i) at `rate` datagrams a second without reading replies."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.setblocking(False)
    i = 0
    started = time.monotonic()
    while not stop.is_set():
        i += 1
        try:
            sock.sendto(make(i), server)
        except (BlockingIOError, OSError):
            pass
        counter[0] += 1
        # Drain replies so the socket buffer does not fill.
        try:
            while True:
                sock.recv(4096)
        except (BlockingIOError, OSError):
            pass
        ahead = i / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def idle_tcp(server, count, stop, held):
    for _ in range(count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.34", 0))
            s.settimeout(2)
            s.connect(server)
            held.append(s)
        except OSError:
            pass
    stop.wait()


def slow_tcp(server, stop, outcome):
    message = query(7, "www.example.com")
    framed = struct.pack("!H", len(message)) + message
    while not stop.is_set():
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.35", 0))
            s.settimeout(5)
            s.connect(server)
            for byte in framed:
                if stop.is_set():
                    break
                s.send(bytes([byte]))
                time.sleep(1)
            outcome["completed"] = outcome.get("completed", 0) + 1
        except OSError:
            outcome["cut_off"] = outcome.get("cut_off", 0) + 1
        finally:
            try:
                s.close()
            except OSError:
                pass


def proc_sample(pid):
    rss_kb = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kb, fds


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--allowed", required=True)
    parser.add_argument("--blocked", required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--silent", default="silent.test")
    parser.add_argument("--flood-rate", type=int, default=20000)
    parser.add_argument("--idle-tcp", type=int, default=200)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    host, port = args.server.rsplit(":", 1)
    server = (host, int(port))
    names = read_names(args.allowed) + read_names(args.blocked)
    stop = threading.Event()
    threads = []
    stats = {address: Stats() for address in WELL_BEHAVED}
    for address in WELL_BEHAVED:
        threads.append(threading.Thread(target=well_behaved, args=(address, server, names, stop, stats[address], 25)))
    counts = {"silent": [0], "malformed": [0], "flood": [0]}
    threads.append(threading.Thread(target=sender, args=(
        "127.0.0.31", server, stop,
        lambda i: query(i & 0xFFFF, f"r{random.getrandbits(48):x}.{args.silent}"), 200, counts["silent"])))
    threads.append(threading.Thread(target=sender, args=(
        "127.0.0.32", server, stop,
        lambda i: os.urandom(random.randint(1, 600)) if i % 2 else query(i & 0xFFFF, "www.example.com")[:random.randint(12, 30)] + os.urandom(8),
        100, counts["malformed"])))
    threads.append(threading.Thread(target=sender, args=(
        "127.0.0.33", server, stop,
        lambda i: query(i & 0xFFFF, random.choice(names)), args.flood_rate, counts["flood"])))
    held = []
    threads.append(threading.Thread(target=idle_tcp, args=(server, args.idle_tcp, stop, held)))
    slow = {}
    threads.append(threading.Thread(target=slow_tcp, args=(server, stop, slow)))
    for t in threads:
        t.daemon = True
        t.start()

    samples = []
    reloads = 0
    started = time.monotonic()
    end = started + args.minutes * 60
    next_sample = started
    next_reload = started + 30
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_sample:
            try:
                rss_kb, fds = proc_sample(args.pid)
            except OSError:
                print("the resolver process is gone", file=sys.stderr)
                return 1
            samples.append({"seconds": round(now - started), "rss_mb": round(rss_kb / 1024, 1), "fds": fds})
            next_sample += 10
        if now >= next_reload:
            os.kill(args.pid, signal.SIGHUP)
            reloads += 1
            next_reload += 30
        time.sleep(0.2)
    stop.set()
    time.sleep(2.5)
    for s in held:
        s.close()

    total = Stats()
    for s in stats.values():
        total.sent += s.sent
        total.answered += s.answered
        total.unanswered += s.unanswered
        total.servfail += s.servfail
        total.latencies += s.latencies
    warm = [s for s in samples if s["seconds"] >= 60] or samples
    result = {
        "minutes": args.minutes,
        "reloads": reloads,
        "well_behaved": {
            "lookups": total.sent,
            "answered": total.answered,
            "answered_share": round(total.answered / max(1, total.sent), 5),
            "servfail_share": round(total.servfail / max(1, total.answered), 5),
            "p50_ms": round(1000 * (percentile(total.latencies, 0.50) or 0), 3),
            "p99_ms": round(1000 * (percentile(total.latencies, 0.99) or 0), 3),
        },
        "sent": {name: count[0] for name, count in counts.items()},
        "idle_tcp_connections_opened": len(held),
        "slow_tcp": slow,
        "samples": samples,
        "rss_mb_after_warmup": [min(s["rss_mb"] for s in warm), max(s["rss_mb"] for s in warm)],
        "fds_after_warmup": [min(s["fds"] for s in warm), max(s["fds"] for s in warm)],
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    wb = result["well_behaved"]
    print(f"soak: {args.minutes} min, {reloads} reloads")
    print(f"well-behaved clients: {wb['lookups']} lookups, {wb['answered']} answered ({100 * wb['answered_share']:.3f} %), "
          f"SERVFAIL {100 * wb['servfail_share']:.3f} %, p50 {wb['p50_ms']} ms, p99 {wb['p99_ms']} ms")
    print(f"sent: silent-upstream names {counts['silent'][0]}, malformed {counts['malformed'][0]}, flood {counts['flood'][0]}")
    print(f"idle TCP connections opened: {len(held)}; slow TCP client: {slow}")
    print("seconds  rss_mb  fds")
    for s in samples:
        print(f"{s['seconds']:7d}  {s['rss_mb']:6.1f}  {s['fds']:4d}")
    print(f"after warm-up (60 s on): RSS {result['rss_mb_after_warmup'][0]}-{result['rss_mb_after_warmup'][1]} MB, "
          f"descriptors {result['fds_after_warmup'][0]}-{result['fds_after_warmup'][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
