"""A text-to-speech program for command-engine tests; what it does depends on the text (run as a script).

    python scripted_tts.py OUT.wav TEXT

``chatty``: 300 MB on stdout and 60 MB on stderr, then exits 1 with "last words"
as its last stderr line. ``hang``: starts a child process, writes both pids to
$SCRIPTED_TTS_PIDS/<pid>, and sleeps. ``long``: a 30-second WAV. Anything else:
a 0.3-second tone, and the arguments it was given go to $SCRIPTED_TTS_ARGS.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import wave


def tone(path: str, seconds: float) -> None:
    rate = 22050
    samples = [round(9000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(round(seconds * rate))]
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def main() -> None:
    out, text = sys.argv[1], sys.argv[2]
    if text.startswith("chatty"):
        block = b"x" * (1 << 20)
        for _ in range(300):
            sys.stdout.buffer.write(block)
        for _ in range(60):
            sys.stderr.buffer.write(block + b"\n")
        sys.stderr.write("last words\n")
        sys.exit(1)
    if text.startswith("hang"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        folder = os.environ["SCRIPTED_TTS_PIDS"]
        with open(os.path.join(folder, str(os.getpid())), "w") as handle:
            handle.write(f"{os.getpid()} {child.pid}")
        time.sleep(3600)
    if text.startswith("long"):
        tone(out, 30.0)
        return
    if "SCRIPTED_TTS_ARGS" in os.environ:
        with open(os.environ["SCRIPTED_TTS_ARGS"], "a") as handle:
            handle.write(json.dumps(sys.argv[1:]) + "\n")
    tone(out, 0.3)


if __name__ == "__main__":
    main()
