#!/usr/bin/env python3
"""Writes the reproducer of the IDX reader's memory finding (see fuzz/README.md, "Findings").

The reproducer itself is 2.3 MB, too big to commit, so this script makes it:

    python3 fuzz/artifacts/idx/oom-gzip-bomb.py /tmp/oom-gzip-bomb.idx.gz
    fuzz/target/x86_64-unknown-linux-gnu/release/idx -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        /tmp/oom-gzip-bomb.idx.gz
    # ==> ERROR: libFuzzer: out-of-memory (malloc(2415919120)) in bnlab::data::idx::gunzip

It is one gzip member holding an IDX header that claims 4294967295 x 4294967295 x 28 bytes
(a product that overflows, so parse_raw rejects it) followed by 2.25 GiB of zeros. parse_idx
decompresses everything before it looks at the 16-byte header, and gunzip reserves the trailer's
ISIZE (capped at 1032 x the input length) up front.
"""
import struct
import sys
import zlib

out_path = sys.argv[1] if len(sys.argv) > 1 else "oom-gzip-bomb.idx.gz"
header = b"\x00\x00\x08\x03" + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 28)
gz = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
parts = [gz.compress(header)]
zeros = bytes(64 << 20)
for _ in range(36):  # 36 x 64 MiB = 2.25 GiB of zeros
    parts.append(gz.compress(zeros))
parts.append(gz.flush())
with open(out_path, "wb") as f:
    f.write(b"".join(parts))
