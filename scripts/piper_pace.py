"""How close the natural voice's first synthesis of each line lands to the rate asked for.

    python scripts/piper_pace.py [--rate 160] [--routine NAME ...]

Needs the natural voice (pip install -e '.[natural]'). Speaks every distinct line of eight words or more in
the built-in routines (or the ones named) the way the piper worker does, and prints each line's first-pass
pace as a share of the rate asked for, then the mean, the spread and how many lines missed by more than
the worker's tolerance (those are spoken a second time, which is most of a cold render's extra cost).
Re-run it when SENTENCE_EDGE_S, LINE_MODEL or RATE_TABLE in voiceguide/speech/piper_worker.py change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=160.0, help="words per minute asked for")
    parser.add_argument("--routine", action="append", help="a built-in routine (default: all of them)")
    args = parser.parse_args()

    from voiceguide.speech import piper_worker as worker

    os.environ.update(worker.QUIET_ENVIRONMENT)  # before onnxruntime is imported, as in the worker
    from voiceguide.pipeline.options import SessionOptions
    from voiceguide.plan.script import build_script, spoken_texts
    from voiceguide.routine.builtin import builtin_names, load_builtin
    from voiceguide.speech.numbers import speakable
    from voiceguide.speech.words import count_words

    texts: dict[str, None] = {}
    for name in args.routine or builtin_names():
        for text in spoken_texts(build_script(load_builtin(name), SessionOptions().script)):
            said = speakable(text) if isinstance(text, str) else ""  # what the worker is sent
            if count_words(said) >= worker.PACED_WORDS:
                texts[said] = None
    speaker = worker.Speaker(worker.default_model())
    voice = {"rate": args.rate}
    shares = []
    for text in texts:
        audio = speaker._speak(text, voice, rate=speaker.first_rate(text, voice))  # the first pass, as the worker does
        share = count_words(text) * 60 / speaker._trimmed_seconds(audio, voice) / args.rate
        sentences = worker.sentence_breaks(text) + 1
        shares.append((share, sentences))
        print(f"{share:6.3f}  {count_words(text):3d} words {sentences} sentences  {text[:60]}")
    for label, group in (("all", shares), ("one sentence", [s for s in shares if s[1] == 1]),
                         ("two or more", [s for s in shares if s[1] > 1])):
        values = [share for share, _ in group]
        if values:
            missed = sum(abs(v - 1) > worker.PACE_TOLERANCE for v in values)
            print(f"{label:13s} {len(values):3d} lines  mean {statistics.mean(values):.3f}  "
                  f"sd {statistics.pstdev(values):.3f}  off by more than {worker.PACE_TOLERANCE:.0%}: {missed}")


if __name__ == "__main__":
    main()
