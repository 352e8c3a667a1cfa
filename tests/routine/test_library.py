"""The stretch library: every entry valid, and routines that use it by id."""

from __future__ import annotations

import pytest

from voiceguide.errors import RoutineError
from voiceguide.routine import load_builtin, parse_routine
from voiceguide.routine.library import AREAS, catalogue, entries, find

SEEDED = {"runners", "table", "pelvic-tilt"}  # the three stretches of the psoas articles


def test_the_library_covers_every_area_asked_for() -> None:
    library = catalogue()
    assert len(library) >= 30
    assert set(library) >= SEEDED
    wanted = {"hips", "hip-flexors", "hamstrings", "quads", "calves", "glutes", "lower-back", "upper-back",
              "chest", "shoulders", "neck", "posterior-chain"}
    assert wanted <= {area for entry in library.values() for area in entry.areas}
    strength = [e for e in library.values() if e.kind == "strength" and "posterior-chain" in e.areas]
    assert len(strength) >= 2


def test_every_entry_is_complete_and_sided_entries_say_what_a_side_is() -> None:
    for entry in catalogue().values():
        assert entry.instructions.strip() and entry.cues, entry.id
        if entry.sides:
            assert entry.side_label and "{side}" in entry.side_label, entry.id
        else:
            assert entry.side_label is None, entry.id
        assert len(entry.instructions.split()) <= 70, entry.id
        assert all(c.isprintable() for c in entry.instructions + "".join(entry.cues)), entry.id


def test_the_seated_pelvic_tilt_has_no_sides_and_no_kneeling_progression() -> None:
    seated = find("pelvic-tilt-seated")
    assert seated.sides is None
    assert not any("back foot" in cue or "block" in cue for cue in seated.cues)
    assert any("block" in cue for cue in find("pelvic-tilt").cues)


def test_a_routine_takes_the_words_from_the_library_and_the_timing_from_itself() -> None:
    routine = parse_routine("name: T\ndefaults: {hold: 25}\nstretches:\n  - use: runners\n  - use: table\n    hold: 40\n"
                            "    name: Table hip stretch\n")
    runners, table = routine.stretches
    entry = find("runners")
    assert (runners.id, runners.name, runners.instructions, runners.sides) == ("runners", entry.name, entry.instructions,
                                                                             entry.sides)
    assert runners.coaching == entry.cues and runners.side_label == entry.side_label and runners.caution == entry.caution
    assert runners.hold is None  # the routine's defaults decide
    assert (table.name, table.hold) == ("Table hip stretch", 40.0)  # overrides win


@pytest.mark.parametrize(("line", "expected"), [
    ("  - use: runner", "t.yaml:4: stretches[1].use: no stretch 'runner' in the library (did you mean 'runners'?)"),
    ("  - use: 12", "t.yaml:4: stretches[1].use: must be a stretch id from the library (got 12)"),
    ("  - use: zzzzzz", "t.yaml:4: stretches[1].use: no stretch 'zzzzzz' in the library (see `voiceguide stretches`)"),
])
def test_an_unknown_id_names_file_line_and_close_matches(line: str, expected: str) -> None:
    with pytest.raises(RoutineError) as caught:
        parse_routine(f"name: T\nstretches:\n  - name: Reach\n{line}\n", "t.yaml")
    assert str(caught.value) == expected


def test_a_used_stretch_still_gets_every_check() -> None:
    with pytest.raises(RoutineError, match=r"t.yaml:4: stretches\[0\].hold: must be greater than 0"):
        parse_routine("name: T\nstretches:\n  - use: runners\n    hold: -3\n", "t.yaml")
    with pytest.raises(RoutineError, match="two stretches are called"):
        parse_routine("name: T\nstretches:\n  - use: runners\n  - use: runners\n", "t.yaml")


def test_filters() -> None:
    assert all("neck" in e.areas for e in entries("neck"))
    assert all(e.level == "beginner" for e in entries(level="beginner"))
    assert len(entries(level="beginner")) < len(entries())
    with pytest.raises(RoutineError, match=r"--area: unknown area 'hip' \(did you mean hips"):
        entries("hip")
    with pytest.raises(RoutineError, match="--level: unknown level"):
        entries(level="expert")
    assert set(AREAS) >= {a for e in catalogue().values() for a in e.areas}


def test_builtins_still_load() -> None:
    assert load_builtin("psoas").stretches
