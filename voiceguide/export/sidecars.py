"""Sidecar files: LRC and WebVTT with every spoken line at its time, the plan as JSON, and M3U playlists.

Times come straight from the plan, so they are the audio's times. Every line of
text passes through ``safe_text``: a line break in a title or a spoken line
cannot start a new LRC, WebVTT or M3U line.
"""

from __future__ import annotations

import json
from pathlib import Path

from voiceguide.export.text import safe_text
from voiceguide.plan.timeline import Event, Plan


def _lrc_time(seconds: float) -> str:
    centis = round(seconds * 100)
    minutes, centis = divmod(centis, 6000)
    return f"{minutes:02d}:{centis / 100:05.2f}"


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis / 1000:06.3f}"


def _spoken(plan: Plan) -> list[Event]:
    """The plan's spoken lines (tones are not words to show)."""
    return [event for event in plan.speech() if event.role != "tone"]


def lrc(plan: Plan) -> str:
    """An LRC file: players that show lyrics show the current instruction."""
    lines = [f"[ti:{safe_text(plan.routine)}]", f"[length:{_lrc_time(plan.duration)[:5]}]", "[re:voiceguide]"]
    lines += [f"[{_lrc_time(plan.seconds(e.start))}]{safe_text(str(e.text or ''))}" for e in _spoken(plan)]
    return "\n".join(lines) + "\n"


def vtt(plan: Plan) -> str:
    """A WebVTT file with one cue per spoken line, from its first to its last sample."""
    cues = ["WEBVTT", ""]
    for number, event in enumerate(_spoken(plan), 1):
        cues += [str(number), f"{_vtt_time(plan.seconds(event.start))} --> {_vtt_time(plan.seconds(event.end))}",
                 safe_text(str(event.text or "")).replace("-->", "->"), ""]
    return "\n".join(cues)


def plan_json(plan: Plan) -> str:
    """The plan as JSON (the same document as ``voiceguide plan --json``)."""
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"


def m3u(entries: list[tuple[Path, float, str]]) -> str:
    """An extended M3U playlist of (file, seconds, title), with paths relative to the playlist."""
    lines = ["#EXTM3U"]
    for path, seconds, title in entries:
        lines += [f"#EXTINF:{round(seconds)},{safe_text(title)}", safe_text(path.name)]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str, temp: Path | None = None) -> None:
    """Write a text file: into ``temp`` (a Staging file, renamed later with the render's other outputs),
    or on its own, atomically (temporary file beside it, then rename). OutputError if it cannot be written."""
    from voiceguide.export.outputs import Staging, write_error

    if temp is None:
        with Staging([path]) as staging:
            write_text(path, text, staging.temp(path))
            staging.commit()
        return
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise write_error(path, exc) from None
