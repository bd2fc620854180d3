#!/usr/bin/env python3
"""How often this machine stops a ready thread for more than a millisecond:
a thread asks to sleep 100 µs at a time for a while and counts the wake-ups
that came over 1 ms late. On an idle machine any such pause is the machine's
own (a virtual machine's host, the kernel's housekeeping); no server can
answer inside it, so it bounds the latency tail every server shows.

    bench/pauses.py [--seconds 10]

Prints one line: wake-ups, pauses over 1 ms, the longest five (ms).
"""
import argparse
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    end = time.perf_counter() + args.seconds
    last = time.perf_counter()
    wakeups = 0
    pauses = []
    while last < end:
        time.sleep(0.0001)
        now = time.perf_counter()
        if now - last > 0.001:
            pauses.append(now - last)
        last = now
        wakeups += 1
    longest = ", ".join(f"{p * 1000:.1f}" for p in sorted(pauses)[-5:][::-1]) or "none"
    print(f"{wakeups} wake-ups in {args.seconds:g} s idle, {len(pauses)} over 1 ms late (longest {longest} ms)")


if __name__ == "__main__":
    main()
