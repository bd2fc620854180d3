#!/usr/bin/env python3
"""A tiny authoritative DNS server on loopback: the upstream every resolver in
the comparison forwards to. It answers A (and AAAA) for the names in
ALLOWED_FILE and NXDOMAIN, with an SOA for negative caching, for every other
name. Only cache misses reach it, so its speed does not bound the results.

    bench/upstream.py --port 5390 --allowed target/bench/allowed.txt [--silent silent.test]

Names under a --silent suffix are never answered, like a domain whose
servers are down (the soak's "random names at a silent upstream").
"""
import argparse
import socket
import struct

SOA_TTL = 3600
ANSWER_TTL = 3600


def read_question(packet):
    """The question's labels (lower case), type, and the offset after it."""
    labels = []
    at = 12
    while True:
        length = packet[at]
        at += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed question")
        labels.append(packet[at:at + length].lower())
        at += length
    qtype, qclass = struct.unpack_from("!HH", packet, at)
    return labels, qtype, qclass, at + 4


def soa_record():
    # Owner: the root, via a fresh name (no compression needed).
    mname = b"\x02ns\x05bench\x00"
    rname = b"\x05admin\x05bench\x00"
    rdata = mname + rname + struct.pack("!IIIII", 1, 3600, 600, 86400, SOA_TTL)
    return b"\x00" + struct.pack("!HHIH", 6, 1, SOA_TTL, len(rdata)) + rdata


def respond(packet, allowed):
    ident, flags, qdcount = struct.unpack_from("!HHH", packet, 0)
    if qdcount != 1 or flags & 0x8000:
        return None
    try:
        labels, qtype, qclass, end = read_question(packet)
    except (ValueError, IndexError, struct.error):
        return None
    question = packet[12:end]
    rd = flags & 0x0100
    name = b".".join(labels).decode("ascii", "replace")
    answers = b""
    authority = b""
    if name in allowed:
        rcode = 0
        address = allowed[name]
        if qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ANSWER_TTL, 4) + address
        elif qtype == 28:
            answers = (
                b"\xc0\x0c"
                + struct.pack("!HHIH", 28, 1, ANSWER_TTL, 16)
                + b"\x20\x01\x0d\xb8" + b"\x00" * 8 + address
            )
        else:
            authority = soa_record()
    else:
        rcode = 3
        authority = soa_record()
    header = struct.pack(
        "!HHHHHH",
        ident,
        0x8000 | 0x0400 | rd | 0x0080 | rcode,
        1,
        1 if answers else 0,
        1 if authority else 0,
        0,
    )
    return header + question + answers + authority


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5390)
    parser.add_argument("--allowed", required=True)
    parser.add_argument("--silent", default=None, help="never answer names under this suffix")
    args = parser.parse_args()
    silent = args.silent.lower().strip(".").encode() if args.silent else None
    allowed = {}
    with open(args.allowed) as names:
        for n, line in enumerate(names):
            name = line.strip().lower().rstrip(".")
            if name and not name.startswith("#"):
                allowed[name] = struct.pack("!I", 0xC6330000 + (n % 65536))  # 198.51.x.y
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", args.port))
    while True:
        packet, client = sock.recvfrom(4096)
        if len(packet) < 17:
            continue
        if silent is not None:
            try:
                labels, _, _, _ = read_question(packet)
            except (ValueError, IndexError, struct.error):
                continue
            name = b".".join(labels)
            if name == silent or name.endswith(b"." + silent):
                continue
        reply = respond(packet, allowed)
        if reply is not None:
            sock.sendto(reply, client)


if __name__ == "__main__":
    main()
