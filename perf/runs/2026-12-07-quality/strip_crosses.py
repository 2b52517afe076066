"""Writes FEED minus every cross message ('Q'): a feed without NASDAQ crosses."""
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
buf = open(src, 'rb').read()
out, i, n = bytearray(), 0, 0
while i + 2 <= len(buf):
    l = struct.unpack('>H', buf[i:i + 2])[0]
    if buf[i + 2:i + 3] == b'Q':
        n += 1
    else:
        out += buf[i:i + 2 + l]
    i += 2 + l
open(dst, 'wb').write(out)
print('crosses removed', n)
