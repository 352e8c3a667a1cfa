"""A speech worker that misbehaves on request, for fault tests (run as a script).

It speaks voiceguide's worker protocol (one JSON request per stdin line, one
JSON answer per line) and picks its behaviour from the text it is asked to say:
``hang`` never answers, ``hang once`` hangs only on its first attempt, ``spawn and
hang`` starts a child process (pids written to FAULTY_WORKER_MARKS) and hangs,
``garbage`` writes random bytes as the WAV, ``empty`` a WAV with no frames,
``silent`` a WAV of zeros, ``crash`` kills the worker mid-line. Anything else
is a short tone. With FAULTY_WORKER_START=fail it cannot start at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
import time
import wave
from pathlib import Path


def write_wav(path: str, samples: list[int], rate: int = 22050) -> None:
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def say(text: str, path: str) -> None:
    if text.startswith("hang once"):
        marker = Path(os.environ["FAULTY_WORKER_MARKS"]) / hashlib.sha1(text.encode()).hexdigest()
        if not marker.exists():
            marker.touch()
            time.sleep(3600)
    elif text.startswith("spawn and hang"):  # leaves a child behind unless its whole process group is killed
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        marks = Path(os.environ["FAULTY_WORKER_MARKS"])
        (marks / f"pids-{os.getpid()}").write_text(f"{os.getpid()} {child.pid}")
        time.sleep(3600)
    elif text.startswith("hang"):
        time.sleep(3600)
    elif text.startswith("garbage"):
        Path(path).write_bytes(os.urandom(2048))
        return
    elif text.startswith("empty"):
        write_wav(path, [])
        return
    elif text.startswith("silent"):
        write_wav(path, [0] * 4410)
        return
    elif text.startswith("crash"):
        os._exit(3)
    write_wav(path, [round(12000 * math.sin(2 * math.pi * 330 * i / 22050)) for i in range(6615)])


def main() -> None:
    if os.environ.get("FAULTY_WORKER_START") == "fail":
        print(json.dumps({"ok": False, "error": "cannot start the speech engine: no voice data"}), flush=True)
        return
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    for raw in sys.stdin:
        request = json.loads(raw)
        if request["op"] == "voices":
            print(json.dumps({"ok": True, "voices": [{"id": "faulty/en", "name": "Faulty", "languages": ["en"]}]}),
                  flush=True)
            continue
        say(request["text"], request["path"])
        print(json.dumps({"ok": True}), flush=True)


if __name__ == "__main__":
    main()
