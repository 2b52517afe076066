#!/usr/bin/env python3
"""Pacing error of a replay, measured at the receiver the same way for any sender.

usage: pace_error.py SOURCE.pcap RECORDING.pcap SPEED

SOURCE is the capture that was replayed (its timestamps are the schedule); RECORDING is what
`tickwatch record` wrote while it was replayed (kernel receive timestamps). MoldUDP64 data
packets are matched by (sequence, count); the error of packet i is
(arrival_i - arrival_0) - (scheduled_i - scheduled_0) / SPEED, with packet 0 the first matched:
the same origin as `tickwatch send`'s own pacer. Prints n, p50, p99, p99.9, max and min (ns).
Standard library only; classic little-endian pcap, Ethernet (optionally 802.1Q) / IPv4 / UDP.
"""
import struct
import sys


def packets(path):
    """(ts_ns, sequence, count) of each MoldUDP64 data packet, in file order."""
    b = open(path, "rb").read()
    magic = struct.unpack_from("<I", b, 0)[0]
    frac = {0xA1B23C4D: 1, 0xA1B2C3D4: 1000}[magic]
    pos, out = 24, []
    while pos + 16 <= len(b):
        sec, sub, incl, _ = struct.unpack_from("<IIII", b, pos)
        frame = b[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        eth = 14
        if frame[12:14] == b"\x81\x00":
            eth = 18
        ihl = (frame[eth] & 0x0F) * 4
        payload = frame[eth + ihl + 8 :]
        if len(payload) < 20:
            continue
        seq, count = struct.unpack_from(">QH", payload, 10)
        if count in (0, 0xFFFF):
            continue
        out.append((sec * 1_000_000_000 + sub * frac, seq, count))
    return out


def pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    src, rec, speed = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sched = {(s, c): t for t, s, c in packets(src)}
    arr = [(t, sched[(s, c)]) for t, s, c in packets(rec) if (s, c) in sched]
    seen, matched = set(), []
    for t, st in arr:  # first arrival of each packet
        if st not in seen:
            seen.add(st)
            matched.append((t, st))
    a0, s0 = matched[0]
    err = sorted((t - a0) - (st - s0) / speed for t, st in matched)
    print(
        f"n {len(err)} p50 {pct(err, .5):.0f} p99 {pct(err, .99):.0f} "
        f"p99.9 {pct(err, .999):.0f} max {err[-1]:.0f} min {err[0]:.0f} ns"
    )


main()
