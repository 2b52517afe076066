#!/usr/bin/env python3
"""usage: slice_pcap.py IN.pcap OUT.pcap FROM_S UNTIL_S — the records whose time of day (UTC)
is within [FROM_S, UNTIL_S] seconds after midnight, plus the last record (the end of session)
restamped with the last kept record's time. Classic little-endian pcap only."""
import struct
import sys

src, dst, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
b = open(src, "rb").read()
frac = {0xA1B23C4D: 1e-9, 0xA1B2C3D4: 1e-6}[struct.unpack_from("<I", b, 0)[0]]
out, pos, last = [b[:24]], 24, None
while pos + 16 <= len(b):
    sec, sub, incl, _ = struct.unpack_from("<IIII", b, pos)
    rec = b[pos : pos + 16 + incl]
    pos += 16 + incl
    tod = sec % 86400 + sub * frac
    if lo <= tod <= hi:
        out.append(rec)
    last = rec
out.append(out[-1][:8] + last[8:])  # the end of session, at the slice's last time
open(dst, "wb").write(b"".join(out))
print(f"{len(out) - 1} records")
