"""Control characters and line breaks never reach a tag, a chapter title or a sidecar line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mutagen
import pytest

from voiceguide.export import sidecars
from voiceguide.export.encode import encode
from voiceguide.export.tags import Tags
from voiceguide.export.text import safe_text
from voiceguide.export.verify import read_chapters, verify
from voiceguide.plan.script import CueScript, Line, Place, SpeechBlock
from voiceguide.plan.timeline import Chapter, build_plan

RATE = 44100
NASTY = "le\nft\r\x00\x1b[31m\u2028side\t\x7f"


@pytest.mark.parametrize(("raw", "clean"), [
    ("Lunge (left)", "Lunge (left)"),
    ("le\nft", "le ft"),
    ("  a\r\n\r\nb  ", "a b"),
    ("\x00\x01\x1f\x7f\x85", ""),
    ("one\u2028two\u2029three", "one two three"),
    ("bad \ud800 surrogate", "bad \ufffd surrogate"),
    ("Ünïcødé ✓ 🧘‍♀️", "Ünïcødé ✓ 🧘‍♀️"),  # letters, symbols and joiners are text, left alone
])
def test_safe_text(raw: str, clean: str) -> None:
    assert safe_text(raw) == clean
    assert safe_text(clean) == clean


def test_tags_are_made_safe_when_built() -> None:
    tags = Tags(title=NASTY, comment="a\nb", artist="x\ud800")
    assert tags.title == "le ft [31m side" and tags.comment == "a b" and tags.artist == "x\ufffd"


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "opus", "flac"])
def test_a_line_break_in_a_chapter_title_or_tag_is_written_as_one_line(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"s.{fmt}"
    chapters = [Chapter(NASTY, 0, RATE), Chapter("Closing", RATE, 2 * RATE)]
    encode([bytes(4 * RATE)], RATE, out, Tags(title=f"Psoas\n{NASTY}"), chapters)
    assert [c.title for c in read_chapters(out)] == ["le ft [31m side", "Closing"]
    verify(out, RATE, 2 * RATE, chapters)  # the plan's titles, made safe the same way, match the file
    text = str(mutagen.File(out).tags)
    assert not any(ord(c) < 32 and c != "\n" for c in text)  # mutagen's pprint separates tags by \n only
    if fmt in ("ogg", "opus", "flac"):  # one comment per chapter field, each on one line
        names = [v for k, v in mutagen.File(out).tags if k.upper().endswith("NAME")]
        assert names == ["le ft [31m side", "Closing"]


def test_sidecar_lines_stay_lines() -> None:
    script = CueScript("Psoas", (SpeechBlock((Line("Breathe out slowly", "preview"),), Place("Preview")),))
    plan = build_plan(script, {"Breathe out slowly": RATE})
    # The library can be handed a plan whose text was never cleaned by the routine loader.
    plan = replace(plan, routine="Psoas\nrelease",
                   events=tuple(replace(e, text="Breathe\nout -->\r\nslowly") if e.text else e for e in plan.events))
    lrc = sidecars.lrc(plan).splitlines()
    assert lrc[0] == "[ti:Psoas release]" and lrc[-1].endswith("]Breathe out --> slowly")
    vtt = sidecars.vtt(plan).split("\n\n")
    assert vtt[1].splitlines()[-1] == "Breathe out -> slowly" and len(vtt[1].splitlines()) == 3
    m3u = sidecars.m3u([(Path("a\nb.mp3"), 60.0, "Lunge\n#EXTINF:1,evil")]).splitlines()
    assert m3u == ["#EXTM3U", "#EXTINF:60,Lunge #EXTINF:1,evil", "a b.mp3"]
