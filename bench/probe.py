#!/usr/bin/env python3
"""Asks a server for a blocked name every 5 ms until the answer is a block
(NXDOMAIN, or the address 0.0.0.0), then prints the wall clock in
nanoseconds. The probe name is one the upstream knows, so an answer that came
from the upstream is never taken for a block. Gives up after --timeout.

    bench/probe.py --port 5391 --name some.listed.example [--timeout 120]
"""
import argparse
import os
import re
import socket
import struct
import sys
import time

NULL_A = re.compile(rb"\x00\x01\x00\x01.{4}\x00\x04\x00\x00\x00\x00", re.DOTALL)


def query(ident, name):
    question = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)


def is_block(reply, ident):
    if len(reply) < 12:
        return False
    rid, flags, _, ancount = struct.unpack_from("!HHHH", reply, 0)
    if rid != ident or not flags & 0x8000:
        return False
    rcode = flags & 0x000F
    if rcode == 3:
        return True
    # An A record (type 1, class IN, any TTL) whose 4-byte address is 0.0.0.0.
    return rcode == 0 and ancount > 0 and NULL_A.search(reply[12:]) is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.005)
    deadline = time.monotonic() + args.timeout
    ident = os.getpid() & 0xFFFF
    while time.monotonic() < deadline:
        ident = (ident + 1) & 0xFFFF
        try:
            sock.sendto(query(ident, args.name), ("127.0.0.1", args.port))
            until = time.monotonic() + 0.005
            while time.monotonic() < until:
                reply = sock.recv(4096)
                if is_block(reply, ident):
                    print(time.time_ns())
                    return
        except (socket.timeout, ConnectionRefusedError, BlockingIOError):
            pass
        time.sleep(0.001)
    sys.exit(f"no blocked answer for {args.name} from port {args.port} within {args.timeout} s")


if __name__ == "__main__":
    main()
