"""A stand-in text-to-speech program for the command engine: writes a tone WAV, one per call.

    python fake_tts.py --out OUT.wav [TEXT]     (the text from stdin when not given)

Texts starting with "fail" exit 1 with a message; the tone's length follows the text's.
"""

from __future__ import annotations

import math
import struct
import sys
import wave


def main() -> None:
    args = sys.argv[1:]
    out = args[args.index("--out") + 1]
    rest = [a for i, a in enumerate(args) if a != "--out" and (i == 0 or args[i - 1] != "--out")]
    text = " ".join(rest) if rest else sys.stdin.read().strip()
    if text.startswith("fail"):
        print("model file not found", file=sys.stderr)
        sys.exit(1)
    rate = 22050
    samples = [round(9000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(round((0.2 + 0.03 * len(text)) * rate))]
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))


if __name__ == "__main__":
    main()
