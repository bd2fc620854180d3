#!/usr/bin/env python3
"""Writes a realistic, deterministic blocklist of N domains (plain-domain format).

Names look like the ones in public blocklists: one to three labels of words,
words with numbers, and hyphenated pairs, under a spread of real TLDs. The same
N and seed always give the same file, so figures are comparable between runs.

    bench/gen-list.py --domains 1000000 --out target/bench/list-1m.txt
"""
import argparse
import random

WORDS = """ads track cdn img static media shop cheap free best game play casino bet poker
slots proxy vpn tube video stream live chat date hot cam click pixel metrics stats
analytics tag beacon promo deal win prize lucky star moon sun blue red green black
white fast super mega ultra world web online digital cloud data app mobile smart tech
news daily top hub zone spot point link go get my your our the one pro plus max prime
secure safe trust check verify login account update service support help info mail
box post share social friend meet match love fun joy happy kids toy toys music radio
film movie show tv series anime manga comic book read learn study school class quiz
test exam answer cheat hack crack key code dev build host server node edge gate port
bridge tunnel shield guard wall fire storm rain snow wind sky sea ocean river lake
""".split()
TLDS = ["com"] * 30 + ["net"] * 8 + ["org"] * 6 + ["info"] * 3 + ["ru"] * 4 + [
    "de", "co.uk", "xyz", "io", "top", "online", "site", "club", "biz", "fr", "nl",
    "pl", "in", "cn", "br", "com.br", "co", "me", "tv", "cc", "us", "eu", "it", "es",
    "org.uk", "com.au", "jp", "kr", "vn", "tk", "ml", "ga", "cf", "gq", "icu", "live",
]


def label(rng):
    shape = rng.random()
    if shape < 0.45:
        return rng.choice(WORDS) + rng.choice(WORDS)
    if shape < 0.70:
        return rng.choice(WORDS) + str(rng.randrange(1, 10_000))
    if shape < 0.90:
        return rng.choice(WORDS) + "-" + rng.choice(WORDS)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(6, 14)))


def domain(rng):
    base = label(rng) + "." + rng.choice(TLDS)
    depth = rng.random()
    if depth < 0.55:
        return base
    if depth < 0.90:
        return label(rng) + "." + base
    return label(rng) + "." + label(rng) + "." + base


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seen = set()
    with open(args.out, "w") as out:
        out.write(f"# {args.domains} generated domains, seed {args.seed}\n")
        while len(seen) < args.domains:
            name = domain(rng)
            if name not in seen:
                seen.add(name)
                out.write(name + "\n")


if __name__ == "__main__":
    main()
