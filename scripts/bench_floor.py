"""The benchmark's floor: encode a raw PCM file with LAME (lameenc) in N processes, nothing else.

    python scripts/bench_floor.py RAW OUT PARTS KBPS QUALITY RATE

RAW is mono 16-bit PCM (the levelled session PCM a render encodes). It is cut
into PARTS contiguous, frame-aligned slices of equal length; each slice is
encoded by its own forked process with the same encoder settings as a render
(bit rate, LAME quality, no resampling), written to OUT.N, and the parent
appends the parts to OUT. Imports nothing but lameenc, so start-up is an
interpreter's and no more. Run by scripts/bench.py, which times the process.
"""

from __future__ import annotations

import os
import sys

FRAME = 1152  # samples per MPEG-1 Layer III frame
CHUNK = 1 << 20  # hand LAME about a megabyte at a time, as a render does


def encode_slice(raw: str, out: str, start: int, end: int, kbps: int, quality: int, rate: int) -> None:
    """Encode samples ``start`` to ``end`` of ``raw`` into ``out``."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    with open(raw, "rb") as source, open(out, "wb") as sink:
        source.seek(start * 2)
        left = (end - start) * 2
        while left > 0:
            data = source.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            sink.write(encoder.encode(data))
        sink.write(encoder.flush())


def main() -> None:
    raw, out, parts, kbps, quality, rate = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    total = os.path.getsize(raw) // 2
    cuts = [total * k // parts // FRAME * FRAME for k in range(parts)] + [total]
    children = []
    for index in range(parts):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                encode_slice(raw, f"{out}.{index}", cuts[index], cuts[index + 1], kbps, quality, rate)
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    with open(out, "wb") as joined:
        for index in range(parts):
            with open(f"{out}.{index}", "rb") as part:
                while block := part.read(CHUNK):
                    joined.write(block)
            os.unlink(f"{out}.{index}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
