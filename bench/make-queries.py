#!/usr/bin/env python3
"""Prepares one comparison's inputs from a blocklist: the list as plain,
normalised domains (every server gets exactly these), the names the upstream
knows (allowed), and a shuffled query file for dnsperf with one third allowed
names, one third blocked names (half of them subdomains of a listed name) and
one third names that do not exist. Also check.txt: a few names of each kind
for the correctness check before any measuring (bench/check.py), and
canaries.txt: the listed names of that check, which the upstream serves too,
so a server that does not block them answers with the upstream's address.

    bench/make-queries.py --list LIST --out DIR [--queries QUERY_FILE] [--per-kind 10000]

A given query file is used as it is (dnsperf format, `name TYPE` per line);
its names that are neither blocked nor listed as allowed get NXDOMAIN.
"""
import argparse
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
gen = __import__("gen-list")

VALID = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)+$")


def read_list(path):
    """Plain domains from a domains, hosts or adblock-style file."""
    names = []
    seen = set()
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("!"):
                continue
            field = line.split()[-1]
            if field.startswith("||"):
                field = field[2:].split("^", 1)[0]
            name = field.lower().rstrip(".")
            if name in ("localhost", "localhost.localdomain", "0.0.0.0", "broadcasthost"):
                continue
            if VALID.match(name) and name not in seen:
                seen.add(name)
                names.append(name)
    return names


def covered(name, blocked):
    labels = name.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--queries")
    parser.add_argument("--per-kind", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    domains = read_list(args.list)
    if not domains:
        sys.exit(f"{args.list}: no domains found (expected one domain, hosts line or ||domain^ per line)")
    blocked = set(domains)
    with open(os.path.join(args.out, "domains.txt"), "w") as out:
        out.write("\n".join(domains) + "\n")

    def fresh(count):
        made = set()
        while len(made) < count:
            name = gen.domain(rng)
            if name not in made and not covered(name, blocked):
                made.add(name)
        return sorted(made)

    allowed = fresh(args.per_kind)
    with open(os.path.join(args.out, "allowed.txt"), "w") as out:
        out.write("\n".join(allowed) + "\n")

    if args.queries:
        with open(args.queries) as given, open(os.path.join(args.out, "queries.txt"), "w") as out:
            out.write(given.read())
    else:
        allowed_set = set(allowed)
        missing = [n for n in fresh(args.per_kind * 2) if n not in allowed_set][: args.per_kind]
        picks = rng.sample(domains, min(args.per_kind, len(domains)))
        blocked_queries = [
            (rng.choice(["www.", "cdn.", "m.", "api."]) + n) if i % 2 else n
            for i, n in enumerate(picks)
        ]
        queries = [f"{n} A" for n in allowed + blocked_queries + missing]
        rng.shuffle(queries)
        with open(os.path.join(args.out, "queries.txt"), "w") as out:
            out.write("\n".join(queries) + "\n")
    # The correctness check: listed names (and a subdomain of each) that the
    # upstream also serves, allowed names, and names that exist nowhere.
    check_blocked = rng.sample(domains, min(10, len(domains)))
    canaries = check_blocked + ["www." + n for n in check_blocked]
    allowed_set = set(allowed)
    check_missing = [n for n in fresh(20) if n not in allowed_set][:10]
    with open(os.path.join(args.out, "canaries.txt"), "w") as out:
        out.write("\n".join(canaries) + "\n")
    with open(os.path.join(args.out, "check.txt"), "w") as out:
        for kind, names in (("blocked", canaries), ("allowed", allowed[:10]), ("missing", check_missing)):
            out.writelines(f"{kind} {n}\n" for n in names)
    # A blocked name for the start-up probe: one from the middle of the list.
    with open(os.path.join(args.out, "probe.txt"), "w") as out:
        out.write(domains[len(domains) // 2] + "\n")
    print(f"{len(domains)} listed domains, {len(allowed)} allowed names")


if __name__ == "__main__":
    main()
