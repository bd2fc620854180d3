#!/usr/bin/env python3
"""Checks that a server filters and resolves correctly before it is measured:
every listed name of check.txt is blocked (NXDOMAIN, no answer, or 0.0.0.0;
the upstream serves these names too, so a server that forwards them gets the
upstream's 192.0.2.1), every allowed name gets the upstream's address
(198.51.x.y), and every missing name NXDOMAIN. Prints one line per wrong
answer and exits 1 if there was any.

    bench/check.py --port 25391 --check DIR/check.txt [--timeout 2]
"""
import argparse
import os
import socket
import struct
import sys

NXDOMAIN = 3


def query(ident, name):
    question = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)


def skip_name(packet, at):
    while True:
        length = packet[at]
        if length & 0xC0:
            return at + 2
        at += 1 + length
        if length == 0:
            return at


def answer(packet):
    """The rcode and the IPv4 addresses of the answer section."""
    _, flags, qdcount, ancount = struct.unpack_from("!HHHH", packet, 0)
    at = 12
    for _ in range(qdcount):
        at = skip_name(packet, at) + 4
    addresses = []
    for _ in range(ancount):
        at = skip_name(packet, at)
        rtype, _, _, length = struct.unpack_from("!HHIH", packet, at)
        at += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(packet[at:at + 4]))
        at += length
    return flags & 0x000F, addresses


def ask(sock, port, ident, name, timeout):
    sock.settimeout(timeout)
    sock.sendto(query(ident, name), ("127.0.0.1", port))
    while True:
        reply = sock.recv(4096)
        if len(reply) >= 12 and struct.unpack_from("!H", reply, 0)[0] == ident:
            return answer(reply)


def verdict(kind, rcode, addresses):
    if kind == "blocked":
        if rcode == NXDOMAIN or (rcode == 0 and all(a == "0.0.0.0" for a in addresses)):
            return None
        return "not blocked"
    if kind == "allowed":
        if rcode == 0 and addresses and all(a.startswith("198.51.") for a in addresses):
            return None
        return "not answered with the upstream's address"
    if rcode == NXDOMAIN:
        return None
    return "not NXDOMAIN"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--check", required=True)
    parser.add_argument("--timeout", type=float, default=2)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ident = os.getpid() & 0xFFFF
    wrong = 0
    asked = 0
    with open(args.check) as lines:
        for line in lines:
            kind, name = line.split()
            ident = (ident + 1) & 0xFFFF
            asked += 1
            try:
                rcode, addresses = ask(sock, args.port, ident, name, args.timeout)
            except (socket.timeout, ConnectionRefusedError):
                print(f"{kind} {name}: no answer within {args.timeout} s")
                wrong += 1
                continue
            except (struct.error, IndexError):
                print(f"{kind} {name}: malformed answer")
                wrong += 1
                continue
            problem = verdict(kind, rcode, addresses)
            if problem:
                print(f"{kind} {name}: {problem} (rcode {rcode}, A {' '.join(addresses) or 'none'})")
                wrong += 1
    if wrong:
        sys.exit(f"{wrong} of {asked} check answers wrong")


if __name__ == "__main__":
    main()
