# Over 350 lines, knowingly: one thin function per command, and most of the file is the option declarations
# typer reads from each signature (a command parses, calls one library function, reports), plus the group
# that has typer read only the signature a run uses.
"""The ``voiceguide`` command: a thin layer over the library.

Each command parses its arguments, calls one library function and prints the
result; our errors become one line on stderr and a documented exit code
(see voiceguide.errors). Heavy modules are imported inside commands so
``--help`` stays fast.
"""

from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from voiceguide.errors import EXIT_INTERRUPTED, OptionError, VoiceguideError
from voiceguide.routine import DEFAULT_ROUTINE

if TYPE_CHECKING:
    from typer import _click as click  # typer 0.28 carries its own click
    from typer.models import CommandInfo

    from voiceguide.pipeline import SessionOptions
    from voiceguide.plan.timeline import Plan

# The commands are registered here and built into click commands only when used (see _BuiltWhenUsed).
_commands = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


class _BuiltWhenUsed(TyperGroup):
    """The command group: each command is built from its signature only when a run uses it.

    Typer builds a click command by reading its function's signature and evaluating every
    annotation (twice per command). For all twelve commands that took 13-23 ms of every
    run, including ``--help`` and ``plan psoas``, nearly all of it for commands the run
    never touches. This is click's lazy-loading pattern: ``commands`` knows every name and
    builds a command when it is looked up; listing them under ``--help`` needs only their
    help texts.
    """

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _CommandsOnUse()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the names, in the order declared, without building any

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        commands = self.commands
        if self._listing and isinstance(commands, _CommandsOnUse) and not commands.is_built(cmd_name):
            return commands.listed(cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # while a command is built or parses its arguments (typer: 130 without a word)
            typer.echo(f"interrupted: {interrupted_outcome()}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


class _CommandsOnUse(MutableMapping[str, "click.Command"]):
    """Command name -> click command, built by typer from its registration the first time it is looked up."""

    def __init__(self) -> None:
        self._built: dict[str, click.Command] = {}

    @staticmethod
    def _registered() -> dict[str, CommandInfo]:
        return {info.name or typer.main.get_command_name(info.callback.__name__): info  # type: ignore[union-attr]
                for info in _commands.registered_commands}

    def is_built(self, name: str) -> bool:
        """Whether the command ``name`` has been built (a run builds only the one it uses)."""
        return name in self._built

    def listed(self, name: str) -> click.Command | None:
        """A command with the help texts typer would give it and no parameters: enough for the list in --help."""
        info = self._registered().get(name)
        if info is None:
            return None
        text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
        return (info.cls or TyperCommand)(name=name, help=text, short_help=info.short_help, hidden=info.hidden,
                                          deprecated=info.deprecated, rich_markup_mode=app.rich_markup_mode)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            info = self._registered()[name]  # KeyError for a name that is no command
            self._built[name] = typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._registered()

    def __iter__(self) -> Iterator[str]:
        return iter({**self._registered(), **self._built})

    def __len__(self) -> int:
        return len({**self._registered(), **self._built})

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]


app = typer.Typer(
    cls=_BuiltWhenUsed,
    help="Turn stretch routines into voice-guided audio sessions with exact timing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich costs ~130 ms of start-up
)

def _print_version(wanted: bool) -> None:
    if wanted:
        from voiceguide import __version__

        typer.echo(f"voiceguide {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Turn stretch routines into voice-guided audio sessions with exact timing."""


RoutineArg = Annotated[str, typer.Argument(help="A routine YAML file, or the name of a built-in routine.")]
HoldOpt = Annotated[
    list[str] | None,
    typer.Option("--hold", metavar="SECONDS|STRETCH=SECONDS",
                 help="Hold length in seconds for every stretch (45), or for one: \"Runner's stretch=60\" "
                 "or runners=60. Repeatable."),
]
VoiceOpt = Annotated[str | None, typer.Option("--voice", metavar="VOICE",
                                              help="Voice id or language, e.g. en-us (see `voices`).")]
RateOpt = Annotated[int | None, typer.Option("--rate", metavar="WPM", help="Speaking rate in words per minute.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Synthesize every line afresh; don't read or write the cache.")]
VolumeOpt = Annotated[float | None, typer.Option("--volume", metavar="0-1", help="Speech engine volume, 0 to 1.")]
PitchOpt = Annotated[int | None, typer.Option("--pitch", metavar="0-100",
                                              min=0, max=100, help="Voice pitch, 0 to 100 (default 50).")]
EngineNameOpt = Annotated[str | None, typer.Option("--engine", metavar="ENGINE", help="Speech engine: auto (the "
                                                   "natural voice when installed, else espeak), espeak or piper.")]
EngineOpt = Annotated[str | None, typer.Option("--engine-command", metavar="COMMAND", help="Speak with another TTS program: its "
                                               "command line, with {output} for the WAV to write and {text} for the "
                                               "line (else the line goes to its stdin).")]
ScaleOpt = Annotated[float, typer.Option("--hold-scale", metavar="FACTOR", help="Multiply every hold, e.g. 1.5.")]
RestOpt = Annotated[str | None, typer.Option("--rest", metavar="SECONDS", help="Seconds of rest between stretches.")]
CountdownOpt = Annotated[int | None, typer.Option("--countdown", metavar="N", help="Length of the spoken countdown; 0 = none.")]
HalfwayOpt = Annotated[bool | None, typer.Option("--halfway/--no-halfway", help="Say (or don't) the halfway cue.")]
DurationOpt = Annotated[str | None, typer.Option("--duration", metavar="TIME", help="Fit the session to this length (20m, 1m30s) "
                                                 "by scaling holds; holds never go below 10 s.")]
TonesOpt = Annotated[bool | None, typer.Option("--tones/--no-tones", help="Chime at each hold's start and end and "
                                               "ring a bell at the end (default: as the routine says).")]
SidesOpt = Annotated[str, typer.Option("--sides", metavar="ORDER",
                                       help="Side order: as-written, reversed, right-first, left-first.")]


def _fail(error: VoiceguideError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(error.exit_code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn our errors, Ctrl-C and SIGTERM into a message and an exit code, never a traceback."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    _WRITTEN[0] = False
    try:
        yield
    except VoiceguideError as error:
        _fail(error)
    except KeyboardInterrupt:
        # Interrupts are held back while a render renames its files into place: one that lands after
        # them finds every output written.
        typer.echo(f"interrupted: {interrupted_outcome()}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


_WRITTEN = [False]  # set once a single render has returned (its outputs are in place)


def interrupted_outcome() -> str:
    """What an interrupt leaves: every output written (a render had put them in place), or nothing."""
    return "every output was already written" if _WRITTEN[0] else "nothing was written"


def parse_seconds(text: str, option: str) -> float:
    """'45', '45s', '1.5m', '1m30s' or '1h' -> seconds."""
    import re

    number = r"(\d+(?:\.\d+)?)"
    match = re.fullmatch(rf"\s*(?:{number}h)?\s*(?:{number}m)?\s*(?:{number}s?)?\s*", text)
    if not match or not any(match.groups()):
        raise OptionError(f"{option}: expected seconds like 45, 45s, 1m30s or 1h (got {text!r})")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _session_options(hold: list[str] | None = None, hold_scale: float = 1.0, rest: str | None = None,
                     countdown: int | None = None, halfway: bool | None = None, duration: str | None = None,
                     sides: str = "as-written", voice: str | None = None, rate: int | None = None,
                     volume: float | None = None, pitch: int | None = None, tones: bool | None = None,
                     engine: str | None = None) -> SessionOptions:
    """Turn the shared render/plan flags into library options."""
    from voiceguide.pipeline import SessionOptions
    from voiceguide.plan.script import ScriptOptions
    from voiceguide.speech.engine import VoiceSettings

    every: float | None = None
    per_stretch: dict[str, float] = {}
    for value in hold or []:
        name, sep, seconds = value.rpartition("=")
        if sep:
            per_stretch[name.strip()] = parse_seconds(seconds, f"--hold {name.strip()}")
        else:
            every = parse_seconds(value, "--hold")
    # A voice id contains a slash (gmw/en-us); anything else is a language code.
    try:
        voice_settings = VoiceSettings(
            id=voice if voice and "/" in voice else None,
            language=voice if voice and "/" not in voice else None,
            rate=rate,
            volume=volume,
            pitch=pitch,
        )
    except OptionError as exc:  # name the flag: "voice rate: ..." -> "--rate: ..."
        message = str(exc)
        for field in ("rate", "volume", "pitch"):
            message = message.replace(f"voice {field}:", f"--{field}:")
        raise OptionError(message) from None
    script = ScriptOptions(hold=every, holds=per_stretch, hold_scale=hold_scale,
                           rest=parse_seconds(rest, "--rest") if rest is not None else None,
                           countdown=countdown, halfway=halfway, side_order=sides, tones=tones)
    return SessionOptions(script=script, voice=voice_settings, engine=engine,
                          duration=parse_seconds(duration, "--duration") if duration is not None else None)


def _engine(command: str | None) -> Any:
    """The default engine, or a command-line TTS program (split like a shell would, but never run by one)."""
    if not command:
        return None
    from voiceguide.speech.registry import get_engine

    try:
        return get_engine("command", template=command)
    except OptionError as exc:
        raise OptionError(f"--engine-command: {str(exc).removeprefix('engine command: ')}") from None


def _cache(no_cache: bool = False) -> Any:
    from voiceguide.speech.cache import ClipCache

    return ClipCache(enabled=not no_cache)


def _clock(seconds: float) -> str:
    """m:ss.s, rounding first so 479.98 s reads 8:00.0, not 7:60.0."""
    minutes, tenths = divmod(round(seconds * 10), 600)
    return f"{minutes}:{tenths / 10:04.1f}"


@_commands.command()
def render(
    routines: Annotated[list[str] | None, typer.Argument(
        help=f"Routine YAML files, folders of them, or built-in names (default: {DEFAULT_ROUTINE}).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", metavar="FILE", help="Output file, for one routine "
                                                "(default: output/NAME.mp3).")] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", metavar="FOLDER",
                                             help="Folder for outputs named after each routine.")]
    = Path("output"),
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", metavar="N", min=1, help="Renders at once (default: one per core).")]
    = None,
    hold: HoldOpt = None,
    hold_scale: ScaleOpt = 1.0,
    rest: RestOpt = None,
    countdown: CountdownOpt = None,
    halfway: HalfwayOpt = None,
    duration: DurationOpt = None,
    sides: SidesOpt = "as-written",
    tones: TonesOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    volume: VolumeOpt = None,
    pitch: PitchOpt = None,
    engine_command: EngineOpt = None,
    engine_name: EngineNameOpt = None,
    no_cache: NoCacheOpt = False,
    verify: Annotated[bool, typer.Option("--verify", help="Decode the written file and check its duration and "
                                         "chapters against the plan before replacing anything.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    fmt: Annotated[str | None, typer.Option("--format", "-f", metavar="FORMAT", help="mp3, m4a, ogg, opus, flac or wav "
                                            "(default: -o's extension, which it must agree with; else mp3).")] = None,
    bitrate: Annotated[str | None, typer.Option("--bitrate", metavar="RATE", help="Bit rate of lossy formats, e.g. 96k "
                                                "(default 64k for voice, 128k with music).")] = None,
    loudness: Annotated[float | None, typer.Option("--loudness", metavar="LUFS", help="Integrated loudness in LUFS (EBU R128), "
                                                   "-40 to -5 (default -16).")] = None,
    lrc: Annotated[bool, typer.Option("--lrc", help="Also write NAME.lrc: every spoken line at its time.")] = False,
    vtt: Annotated[bool, typer.Option("--vtt", help="Also write NAME.vtt (WebVTT captions).")] = False,
    plan_json: Annotated[bool, typer.Option("--json", help="Also write NAME.json, the plan.")] = False,
    sidecars: Annotated[bool, typer.Option("--sidecars", help="All three: --lrc --vtt --json.")] = False,
    split: Annotated[bool, typer.Option("--split", help="One file per stretch plus an .m3u playlist.")] = False,
    music: Annotated[list[Path] | None, typer.Option("--music", metavar="FILE",
                                                     help="Background music (any format ffmpeg reads); "
                                                     "repeat to play several in turn. Ducked under every line.")] = None,
    music_volume: Annotated[float, typer.Option("--music-volume", metavar="DB", help="dB the music plays under the voice, "
                                                           "-60 to 0.")] = -18.0,
    duck: Annotated[float, typer.Option("--duck", metavar="DB", help="dB the music dips further while a line "
                                          "is spoken, 0 to 40.")] = 12.0,
    cover: Annotated[Path | None, typer.Option("--cover", metavar="IMAGE",
                                               help="Cover art to embed (PNG or JPEG); default: a drawn one.")]
    = None,
    no_cover: Annotated[bool, typer.Option("--no-cover", help="Embed no cover art.")] = False,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="In a batch, render the good routines even if "
                                             "some files are bad; report the failures at the end.")] = False,
) -> None:
    """Render routines to voice-guided MP3s with chapters (several at once: one per core)."""
    from voiceguide.host import lean_heap

    lean_heap()  # the CLI owns the process: fewer malloc heaps for the render, its encoders and what it starts
    with _user_errors():
        from dataclasses import replace

        from voiceguide.pipeline import BatchItem, default_output, render_session
        from voiceguide.pipeline.outputs import load_routines
        from voiceguide.routine.builtin import expand_routine_args

        specs = expand_routine_args(routines or [DEFAULT_ROUTINE])
        if output and len(specs) > 1:
            raise OptionError(f"-o/--output names one file, but {len(specs)} routines were given; use --output-dir")
        options = _session_options(hold, hold_scale, rest, countdown, halfway, duration, sides, voice, rate, volume,
                                   pitch, tones, engine_name)
        options = replace(options, fmt=fmt, bitrate=bitrate, music=tuple(music or ()), music_volume=music_volume,
                          duck=duck, cover=cover, draw_cover=not no_cover)
        if loudness is not None:  # else the library's default
            options = replace(options, loudness=loudness)
        wanted = _extras(lrc, vtt, plan_json, split, every=sidecars)
        # Every file is validated before anything is rendered (with --keep-going, bad ones are reported at the end).
        loaded, bad = load_routines(specs, keep_going)
        for error in bad:
            typer.echo(f"error: {error}", err=True)
        if len(loaded) == 1 and not bad:
            model, base, source = loaded[0]
            result = render_session(model, output or default_output(base, output_dir, fmt), options,
                                    engine=_engine(engine_command), cache=_cache(no_cache), verify=verify,
                                    progress=None if quiet else _Progress(), extras=wanted, source=source)
            _WRITTEN[0] = True
            if duration:
                typer.echo(_hold_summary(result.plan), err=True)
            typer.echo(_wrote(result, verify))
            for extra in result.extras:
                typer.echo(f"wrote {extra}")
            return
        items = [BatchItem(model, output or default_output(base, output_dir, fmt), source)
                 for model, base, source in loaded]
        _render_batch(items, bad, options, jobs=jobs, engine=_engine(engine_command), cache=_cache(no_cache),
                      verify=verify, extras=wanted)


def _render_batch(items: list[Any], bad: list[VoiceguideError], options: Any, *, jobs: int | None, engine: Any,
                  cache: Any, verify: bool, extras: Any) -> None:
    """Several renders (one per core), each reported as it finishes; the failures (and bad files) counted at the end."""
    from voiceguide.pipeline import render_many

    def finished(item: Any, result: Any) -> None:
        if isinstance(result, VoiceguideError):
            typer.echo(f"error: {item.output}: {result}", err=True)
        else:
            typer.echo(_wrote(result, verify))

    results = render_many(items, options, jobs=jobs, engine=engine, cache=cache, verify=verify, done=finished,
                          extras=extras) if items else []
    failures = bad + [r for r in results if isinstance(r, VoiceguideError)]
    if failures:
        typer.echo(f"{len(failures)} of {len(bad) + len(results)} renders failed", err=True)
        raise typer.Exit(failures[0].exit_code)


def _extras(lrc: bool, vtt: bool, plan_json: bool, split: bool, every: bool) -> Any:
    """The sidecar flags as the library's Sidecars (--sidecars is all three)."""
    from voiceguide.pipeline import Sidecars

    return Sidecars(lrc=lrc or every, vtt=vtt or every, json=plan_json or every, split=split)


def _wrote(result: Any, verified: bool) -> str:
    """One line for a finished render: where, how long, its chapters, and which voice spoke."""
    checked = ", verified" if verified else ""
    return (f"wrote {result.output} ({_clock(result.plan.duration)}, {len(result.chapters)} chapters{checked}, "
            f"voice: {result.engine})")


_STAGE_LABELS = {"synthesis": "speech", "encoding": "encoding", "verify": "verifying"}


class _Progress:
    """Progress on stderr: a redrawn bar per stage on a terminal, plain lines when piped or in CI."""

    def __init__(self) -> None:
        import os
        import time

        self.clock = time.monotonic
        self.live = sys.stderr.isatty() and not os.environ.get("CI")
        self.stage = ""
        self.last_draw = 0.0
        self.last_quarter = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        label = _STAGE_LABELS.get(stage, stage)
        if stage != self.stage:
            self.stage, self.last_quarter, self.last_draw = stage, -1, 0.0
        if self.live:
            now = self.clock()
            if fraction < 1 and now - self.last_draw < 0.1:
                return
            self.last_draw = now
            bar = "#" * round(fraction * 30)
            end = "\n" if fraction >= 1 else ""
            sys.stderr.write(f"\r{label:<10} [{bar:<30}] {fraction:4.0%}{end}")
            sys.stderr.flush()
            return
        quarter = int(fraction * 4)  # plain lines at 0, 25, 50, 75 and 100 %
        if quarter != self.last_quarter:
            self.last_quarter = quarter
            sys.stderr.write(f"{label}: {quarter * 25}%\n")
            sys.stderr.flush()


@_commands.command()
def preview(
    text: Annotated[str, typer.Argument(help="The line to speak.")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="Where to write it (format from the extension).")]
    = Path("output/preview.mp3"),
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    volume: VolumeOpt = None,
    pitch: PitchOpt = None,
    engine_command: EngineOpt = None,
    engine_name: EngineNameOpt = None,
) -> None:
    """Speak one line to a file, to try a voice before rendering a session."""
    with _user_errors():
        from voiceguide.pipeline import engine_for, preview_line

        chosen = _session_options(voice=voice, rate=rate, volume=volume, pitch=pitch, engine=engine_name)
        engine = _engine(engine_command) or engine_for(None, chosen)
        seconds = preview_line(text, output, chosen.voice, engine=engine, cache=_cache())
        typer.echo(f"wrote {output} ({seconds:.1f} s)")


@_commands.command("cache")
def cache_command(
    action: Annotated[str, typer.Argument(help="info: where the speech cache is and its size; clear: empty it.")],
) -> None:
    """Show or clear the speech cache."""
    with _user_errors():
        from voiceguide.speech.cache import ClipCache

        store = ClipCache()
        if action == "info":
            count, size = store.info()
            typer.echo(f"{store.folder}: {count} clips, {size / 1e6:.1f} MB")
        elif action == "clear":
            from voiceguide.leftovers import clean_leftovers

            leftovers = clean_leftovers(store.folder)  # temporaries of killed renders, never a live one's
            typer.echo(f"removed {store.clear()} clips from {store.folder}")
            if leftovers:
                typer.echo(f"removed {leftovers} leftovers of interrupted renders")
        else:
            raise OptionError(f"cache: unknown action {action!r}; use 'info' or 'clear'")


def _hold_summary(plan: Plan) -> str:
    """The hold lengths a fitted session ended up with."""
    holds: dict[str, float] = {}
    for event in plan.events:
        if event.kind == "hold":
            holds.setdefault(event.place.stretch or "", (event.end - event.start) / plan.rate)
    return f"fitted to {_clock(plan.duration)}: " + ", ".join(f"{name} {secs:g}s" for name, secs in holds.items())


@_commands.command()
def plan(
    routine: RoutineArg = DEFAULT_ROUTINE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="Don't synthesize speech to measure it; "
                                           "estimate lines not yet in the cache.")] = False,
    hold: HoldOpt = None,
    hold_scale: ScaleOpt = 1.0,
    rest: RestOpt = None,
    countdown: CountdownOpt = None,
    halfway: HalfwayOpt = None,
    duration: DurationOpt = None,
    sides: SidesOpt = "as-written",
    tones: TonesOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = None,
    volume: VolumeOpt = None,
    pitch: PitchOpt = None,
    engine_command: EngineOpt = None,
    engine_name: EngineNameOpt = None,
) -> None:
    """Print the timeline (what is said when, the holds, the total) without rendering the session."""
    with _user_errors():
        from voiceguide.pipeline import plan_session
        from voiceguide.routine.builtin import resolve_routine

        model, _ = resolve_routine(routine)
        options = _session_options(hold, hold_scale, rest, countdown, halfway, duration, sides, voice, rate, volume,
                                   pitch, tones, engine_name)
        result = plan_session(model, options, engine=_engine(engine_command), cache=_cache(), estimate=estimate)
        if as_json:
            import json  # here and in schema only: `--help` never loads it

            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            if duration:
                typer.echo(_hold_summary(result), err=True)
            typer.echo(format_plan(result, estimated=estimate))


def format_plan(plan: Plan, estimated: bool = False) -> str:
    """A readable table: one row per chapter with its hold and cues, then the total."""
    rows = [f"{plan.routine}: {_clock(plan.duration)}{' (estimated)' if estimated else ''}",
            f"{'start':>8}  {'chapter':<40} {'hold':>6}  cues"]
    for chapter in plan.chapters:
        inside = [e for e in plan.events if chapter.start <= e.start < chapter.end]
        holds = [e for e in inside if e.kind == "hold"]
        hold_text = " + ".join(f"{(h.end - h.start) / plan.rate:g}s" for h in holds)
        cues = [f"{_cue_text(e)}@{(e.start - h.start) / plan.rate:g}" for h in holds for e in inside
                if e.kind == "speech" and h.start <= e.start < h.end]
        rows.append(f"{_clock(plan.seconds(chapter.start)):>8}  {chapter.title:<40} {hold_text:>6}  {' '.join(cues)}")
    rows.append(f"total {_clock(plan.duration)}, {sum(1 for _ in plan.speech())} spoken lines")
    rows += [f"note: left out {d}" for d in plan.dropped]
    return "\n".join(rows)


def _cue_text(event: Any) -> str:
    return f"({event.label} chime)" if event.role == "tone" else event.label or ""


@_commands.command("list")
def list_routines() -> None:
    """List the built-in routines."""
    with _user_errors():
        from voiceguide.routine.builtin import builtin_names, load_builtin

        for name in builtin_names():
            model = load_builtin(name)
            typer.echo(f"{name:<16} {model.name}: {len(model.stretches)} stretches")


@_commands.command()
def voices(language: Annotated[str | None, typer.Option("--language", "-l", metavar="LANGUAGE",
                                                        help="Only voices for this language.")]
           = None) -> None:
    """List every installed engine's voices; the engine `auto` uses is marked (default)."""
    with _user_errors():
        from voiceguide.speech.registry import engine_catalogue

        for name, default, offered, missing in engine_catalogue():
            typer.echo(f"{name}{' (default)' if default else ''}: {missing or f'{len(offered)} voices'}")
            for v in offered:
                if language and not any(lang.lower().startswith(language.lower()) for lang in v.languages):
                    continue
                typer.echo(f"  {v.id:<24} {v.name:<40} {', '.join(v.languages)}")


@_commands.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Routine files to check.", metavar="FILE...")]) -> None:
    """Check routine files as `plan` does (cues and countdowns fit, limits, voice), without synthesizing speech."""
    from voiceguide.pipeline import check_routine

    failed = 0
    for file in files:
        try:
            plan = check_routine(file)
        except VoiceguideError as error:
            typer.echo(f"error: {error}", err=True)
            failed = error.exit_code
        else:
            typer.echo(f"{file}: ok ({plan.routine}, {_clock(plan.duration)} estimated)")
    if failed:
        raise typer.Exit(failed)


@_commands.command()
def schema() -> None:
    """Print the JSON Schema of routine files (for editor validation and completion)."""
    import json

    from voiceguide.routine.load import routine_schema

    typer.echo(json.dumps(routine_schema(), indent=2))


@_commands.command()
def init(
    name: Annotated[str, typer.Argument(help="Routine name; writes NAME.yaml (or the path given).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter routine that renders as is."""
    with _user_errors():
        from voiceguide.routine.builtin import write_starter

        typer.echo(f"wrote {write_starter(name, force=force)}")


@_commands.command()
def stretches(
    stretch: Annotated[str | None, typer.Argument(help="Show this library stretch in full.")] = None,
    area: Annotated[str | None, typer.Option("--area", help="Only stretches for this body area.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="Only stretches up to this level.")] = None,
) -> None:
    """List the stretch library (routines use its stretches with `- use: ID`), or show one stretch."""
    with _user_errors():
        from voiceguide.routine.library import entries, find

        if stretch is not None:
            typer.echo(_describe_entry(find(stretch)))
            return
        for entry in entries(area, level):
            sides = "sides" if entry.sides else "     "
            typer.echo(f"{entry.id:<28} {entry.name:<34} {entry.hold:>4g}s {sides} {entry.level:<12} {', '.join(entry.areas)}")


def _describe_entry(entry: Any) -> str:
    lines = [f"{entry.name} ({entry.id})", f"areas: {', '.join(entry.areas)}; level: {entry.level}; {entry.kind}; "
             f"suggested hold {entry.hold:g} s"]
    if entry.sides:
        lines.append(f"sides: {', '.join(entry.sides)}, announced as \"{entry.side_label}\"")
    lines += ["", entry.instructions, "", "coaching:", *(f"  - {cue}" for cue in entry.cues)]
    if entry.caution:
        lines += ["", f"caution: {entry.caution}"]
    return "\n".join(lines)


@_commands.command()
def new(
    name: Annotated[str, typer.Argument(help="Session name; writes NAME.yaml (or the path given).")],
    area: Annotated[list[str], typer.Option("--area", help="Body area to work (repeatable), e.g. hips, hamstrings, "
                                            "full-body (see `stretches`).", metavar="AREA")],
    minutes: Annotated[float, typer.Option("--minutes", help="Target length in minutes.")] = 10.0,
    level: Annotated[str | None, typer.Option("--level", help="beginner, intermediate or advanced.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Compose a session from the stretch library and write it as an editable routine file."""
    with _user_errors():
        from voiceguide.compose import NewSession, write_new_session

        title = Path(name).stem.replace("-", " ").replace("_", " ").strip().capitalize() or name
        path, routine = write_new_session(NewSession(title, tuple(area), minutes, level), name, force=force)
        typer.echo(f"wrote {path}: {len(routine.stretches)} stretches; render it with: voiceguide render {path}")


@_commands.command()
def serve(
    folder: Annotated[Path, typer.Argument(help="Folder of routines; rendered sessions go in FOLDER/.voiceguide.")]
    = Path("."),
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 8765,
    host: Annotated[str | None, typer.Option("--host", metavar="ADDRESS", help="Address to bind "
                                             "(default 127.0.0.1; --lan: every interface).")] = None,
    lan: Annotated[bool, typer.Option("--lan", help="Reachable from phones on this network; every request then "
                                      "needs the access key (printed with the URL and a QR code).")] = False,
    key: Annotated[str | None, typer.Option("--key", metavar="KEY", help="Access key (default: a new random one "
                                            "each run, with --lan).")] = None,
) -> None:
    """Serve the library, the player and a podcast feed of rendered sessions (needs voiceguide[serve])."""
    with _user_errors():
        import importlib.util

        if any(importlib.util.find_spec(name) is None for name in ("starlette", "uvicorn", "segno")):
            raise OptionError("serve needs: pip install 'voiceguide[serve]'")
        from voiceguide.serve.server import serve as run

        run(folder, host=host, port=port, lan=lan, key=key)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
