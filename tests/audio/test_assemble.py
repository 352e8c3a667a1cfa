"""Assembly: the PCM stream has exactly the plan's length with each clip at its start."""

from __future__ import annotations

from voiceguide.audio.assemble import pcm_chunks
from voiceguide.plan.script import build_script, spoken_texts
from voiceguide.plan.timeline import RATE, build_plan
from voiceguide.routine.load import parse_routine
from voiceguide.speech.engine import Clip

ROUTINE = "name: T\ndefaults: {hold: 6, rest: 2}\nstretches:\n  - name: A\n    sides: [l, r]\n  - name: B\n"


def test_stream_is_exact_and_clips_sit_at_their_starts() -> None:
    script = build_script(parse_routine(ROUTINE))
    # Each text becomes a clip of constant value, distinct per text, so positions can be read back.
    clips = {t: Clip(((i + 1) * 100).to_bytes(2, "little", signed=True) * (2000 + 37 * i), RATE)
             for i, t in enumerate(spoken_texts(script))}
    plan = build_plan(script, {t: c.samples for t, c in clips.items()})
    pcm = b"".join(pcm_chunks(plan, clips))
    assert len(pcm) == plan.total * 2
    for event in plan.speech():
        clip = clips[event.text or ""]
        assert pcm[event.start * 2 : event.end * 2] == clip.pcm
        if event.start > 0:
            assert pcm[event.start * 2 - 2 : event.start * 2] == b"\x00\x00"  # silence just before


def test_chunks_are_bounded() -> None:
    script = build_script(parse_routine(ROUTINE.replace("hold: 6", "hold: 600")))
    clips = {t: Clip(b"\x01\x00" * 1000, RATE) for t in spoken_texts(script)}
    plan = build_plan(script, {t: c.samples for t, c in clips.items()})
    assert max(len(chunk) for chunk in pcm_chunks(plan, clips)) <= RATE * 2


def test_two_hour_stream_is_sample_exact() -> None:
    stretches = "\n".join(f"  - name: S{i}\n    hold: 37.3\n    sides: [l, r]" for i in range(90))
    script = build_script(parse_routine(f"name: Long\ndefaults: {{rest: 7.7}}\nstretches:\n{stretches}\n"))
    clips = {t: Clip(b"\x10\x00" * (1000 + len(t) * 97), RATE) for t in spoken_texts(script)}
    plan = build_plan(script, {t: c.samples for t, c in clips.items()})
    assert plan.duration > 2 * 3600
    assert sum(len(chunk) for chunk in pcm_chunks(plan, clips)) == plan.total * 2
