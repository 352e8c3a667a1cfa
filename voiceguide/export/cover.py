"""Cover art: read a user's image, or draw a simple one (a soft gradient and rings) from the session's title.

The drawn cover is a PNG made with zlib alone: no image library, no assets.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from pathlib import Path

from voiceguide.errors import OptionError

SIZE = 256
MIMES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def read_cover(path: Path) -> tuple[bytes, str]:
    """An image's bytes and MIME type (PNG or JPEG); OptionError for anything else."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"--cover: {path}: {exc.strerror or 'cannot be read'}") from None
    for magic, mime in MIMES.items():
        if data.startswith(magic):
            return data, mime
    raise OptionError(f"--cover: {path}: not a PNG or JPEG image")


def draw_cover(title: str, size: int = SIZE) -> bytes:
    """A PNG: a diagonal gradient between two calm colours picked from the title, with three rings."""
    digest = hashlib.sha256(title.encode("utf-8")).digest()
    hue = digest[0] / 255
    top = _colour(hue, 0.45, 0.80)
    bottom = _colour((hue + 0.12) % 1.0, 0.55, 0.35)
    centre = size / 2
    # The gradient depends only on x + y: one colour per diagonal, looked up per pixel.
    diagonal = [bytes(round(a + (b - a) * k / (2 * size - 2)) for a, b in zip(top, bottom, strict=True))
                for k in range(2 * size - 1)]
    radii = [r * size for r in (0.18, 0.28, 0.38)]
    rows = []
    for y in range(size):
        row = bytearray(b"".join(diagonal[x + y] for x in range(size)))
        dy = y + 0.5 - centre
        for radius in radii:  # lighten only the pixels near each ring
            outer = (radius + 2.5) ** 2 - dy * dy
            if outer < 0:
                continue
            for x in range(max(0, int(centre - math.sqrt(outer))), min(size, int(centre + math.sqrt(outer)) + 1)):
                edge = abs(math.hypot(x + 0.5 - centre, dy) - radius)
                if edge < 2.5:
                    mix = 0.55 * (1 - edge / 2.5)
                    row[3 * x : 3 * x + 3] = bytes(round(v + (255 - v) * mix) for v in row[3 * x : 3 * x + 3])
        rows.append(b"\x00" + bytes(row))  # PNG filter byte: none
    return _png(size, size, b"".join(rows))


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    i = int(hue * 6) % 6
    f = hue * 6 - int(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - f * saturation), value * (1 - (1 - f) * saturation)
    r, g, b = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)][i]
    return round(r * 255), round(g * 255), round(b * 255)


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
