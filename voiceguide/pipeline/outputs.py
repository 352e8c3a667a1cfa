"""Output planning for renders and batches: every file they will write, named and checked before any work.

Sits just below pipeline: it knows routines and plans (for split part names) and uses
voiceguide.export.outputs for the checks themselves and the all-or-nothing writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.errors import PlanError, VoiceguideError
from voiceguide.export.outputs import Sidecars, Target, check_targets, session_targets
from voiceguide.plan.script import build_script
from voiceguide.plan.timeline import Chapter, Plan, build_plan
from voiceguide.routine.model import Routine

if TYPE_CHECKING:
    from voiceguide.pipeline.options import BatchItem, SessionOptions


def stretch_ranges(plan: Plan) -> list[tuple[str, int, int, list[Chapter]]]:
    """(title, start, end, chapters) per stretch; the introduction and closing get their own."""
    ranges: list[tuple[str, int, int, list[Chapter]]] = []
    for chapter in plan.chapters:
        event = next((e for e in plan.events if chapter.start <= e.start < chapter.end), None)
        title = (event.place.stretch if event and event.place.stretch else chapter.title) or chapter.title
        if ranges and ranges[-1][0] == title:
            name, start, _, chapters = ranges[-1]
            ranges[-1] = (name, start, chapter.end, [*chapters, chapter])
        else:
            ranges.append((title, chapter.start, chapter.end, [chapter]))
    return ranges


def render_inputs(routine: Routine, options: SessionOptions | None, source: Path | None) -> list[tuple[str, Path]]:
    """Every file a render reads (an output must never be one of them)."""
    found = [("the routine file", Path(source))] if source is not None else []
    music: tuple[str | Path, ...] = (options.music if options is not None else ()) or tuple(routine.music or ())
    found += [("a music file", Path(track)) for track in music]
    cover = options.cover if options is not None else None
    return found + ([("the cover image", Path(cover))] if cover is not None else [])


def split_targets(output: Path, extras: Sidecars, plan: Plan | None, label: str = "") -> list[Target]:
    """The files a render writes, its split parts named from ``plan``'s stretches."""
    titles = [title for title, *_ in stretch_ranges(plan)] if extras.split and plan is not None else []
    return session_targets(output, extras, titles, label)


def check_outputs(targets: list[Target], routine: Routine, options: SessionOptions | None, source: Path | None) -> None:
    """Check ``targets`` against each other and the render's inputs (see check_targets)."""
    check_targets(targets, render_inputs(routine, options, source))


def plan_outputs(routine: Routine, output: Path, options: SessionOptions | None = None,
                 extras: Sidecars | None = None, source: Path | None = None, label: str = "") -> list[Target]:
    """Every file a render of ``routine`` to ``output`` will write, checked before any work is done.

    OutputError if the folder cannot be written; OptionError if a target is one of the inputs (the routine
    file ``source``, a music file, the cover), is not a regular file (a device, FIFO, socket or folder), or
    is named twice (a sidecar called like the session). Split parts are named from the routine's stretches.
    """
    from voiceguide.export.encode import check_writable

    output, extras = Path(output), extras or Sidecars()
    check_writable(output)
    structure: Plan | None = None
    if extras.split:
        try:  # the chapters do not depend on how long each line is: time every line as one sample
            structure = build_plan(build_script(routine, options.script if options else None), lambda _text: 1)
        except PlanError:
            structure = None  # checked again once the real plan is made
    targets = split_targets(output, extras, structure, label)
    check_targets(targets, render_inputs(routine, options, source))
    return targets


def plan_batch(items: Sequence[BatchItem], options: SessionOptions | None = None,
               extras: Sidecars | None = None) -> list[Target]:
    """Every file a batch will write, checked before any work (see plan_outputs), across renders too:
    two routines whose outputs (or sidecars, or split parts) have the same name, or one render writing
    another's input, are refused naming both."""
    targets: list[Target] = []
    inputs: list[tuple[str, Path]] = []
    for item in items:
        label = str(item.source) if item.source is not None else item.routine.name
        targets += plan_outputs(item.routine, item.output, options, extras, item.source, label)
        inputs += render_inputs(item.routine, options, item.source)
    check_targets(targets, inputs)
    return targets


def load_routines(specs: Sequence[str | Path], keep_going: bool = False) -> tuple[list[tuple[Routine, str, Path | None]],
                                                                                 list[VoiceguideError]]:
    """Load every routine of a batch before anything is rendered: (routine, base name, file or None) for each.

    Each error names its file. The first bad one stops the batch (raised) unless ``keep_going``,
    which returns the failures beside the routines that loaded.
    """
    from voiceguide.routine.builtin import resolve_routine

    loaded: list[tuple[Routine, str, Path | None]] = []
    failures: list[VoiceguideError] = []
    for spec in specs:
        try:
            model, base = resolve_routine(spec)
        except VoiceguideError as error:
            if not keep_going:
                raise
            failures.append(error)
            continue
        path = Path(spec)
        loaded.append((model, base, path if path.is_file() else None))
    return loaded, failures
