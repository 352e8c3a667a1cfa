"""The benchmark's peer: stitch a session the way script-to-audio generators do, with pydub.

    python scripts/bench_peer.py MANIFEST OUT FFMPEG

MANIFEST (JSON, written by scripts/bench.py) names the session's clips (raw
mono 16-bit PCM files, the same levelled clips a render uses) and the order
they are spoken in with the silence before each. The session is built with
pydub's ``+`` (every join copies everything so far, so time grows with the
square of the length) from the clips and ``AudioSegment.silent`` gaps, then
exported to MP3 by pydub through ffmpeg at the same bit rate. Imports pydub
only, not voiceguide. Prints the time of each stage as JSON.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main() -> None:
    manifest, out, ffmpeg = sys.argv[1], sys.argv[2], sys.argv[3]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg
    with open(manifest, encoding="utf-8") as handle:
        spec = json.load(handle)
    rate = spec["rate"]
    clips = []
    for path in spec["clips"]:
        with open(path, "rb") as handle:
            clips.append(AudioSegment(data=handle.read(), sample_width=2, frame_rate=rate, channels=1))
    loaded = time.perf_counter()
    session = AudioSegment.silent(duration=0, frame_rate=rate)
    for gap, index in spec["sequence"]:
        session = session + AudioSegment.silent(duration=gap * 1000 / rate, frame_rate=rate)
        session = session + clips[index]
    session = session + AudioSegment.silent(duration=spec["tail"] * 1000 / rate, frame_rate=rate)
    stitched = time.perf_counter()
    session.export(out, format="mp3", bitrate=spec["bitrate"])
    print(json.dumps({"load": loaded - started, "stitch": stitched - loaded, "export": time.perf_counter() - stitched}))


if __name__ == "__main__":
    main()
