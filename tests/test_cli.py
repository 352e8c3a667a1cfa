"""The command line, through typer's CliRunner."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import decode, decoded_length
from typer.testing import CliRunner

from voiceguide.cli import app, parse_seconds
from voiceguide.errors import OptionError
from voiceguide.routine import builtin_names
from voiceguide.speech.cache import ClipCache

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("render", "plan", "list", "voices", "validate"):
        assert command in result.output


def _built(group: Any) -> list[str]:
    return [name for name in group.commands if group.commands.is_built(name)]


def _groups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The click group typer builds for each ``runner.invoke(app, ...)``, in order."""
    import typer.testing

    groups: list[Any] = []
    build = typer.testing._get_command

    def capture(typer_app: Any) -> Any:
        groups.append(build(typer_app))
        return groups[-1]

    monkeypatch.setattr(typer.testing, "_get_command", capture)
    return groups


def test_help_builds_no_command_and_lists_each_as_typer_builds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing the commands under --help reads only their help texts; the lines are the ones typer's own
    build of every command gives (a command whose docstring lost its first line would differ)."""
    from voiceguide import cli

    groups = _groups(monkeypatch)
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and _built(groups[0]) == []
    listed = result.stdout.split("Commands:\n", 1)[1]
    eager = runner.invoke(cli._commands, ["--help"])  # the commands alone: typer builds every one
    assert listed == eager.stdout.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines()] == [
        "render", "preview", "cache", "plan", "list", "voices", "validate", "schema", "init", "stretches", "new",
        "serve"]


def test_a_run_builds_only_the_command_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = _groups(monkeypatch)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "psoas" in result.stdout
    assert _built(groups[0]) == ["list"]
    typo = runner.invoke(app, ["plna", "psoas"])  # the suggestion still knows every name
    assert typo.exit_code == 2 and "Did you mean 'plan'?" in typo.output and _built(groups[1]) == []


def _modules_loaded(args: list[str], cache: Path) -> set[str]:
    """Every module a fresh process has loaded once ``voiceguide ARGS`` has run (espeak, the cache in ``cache``)."""
    probe = ("import sys, contextlib, io\n"
             f"sys.argv = ['voiceguide', *{args!r}]\n"
             "from voiceguide.console import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             "    main()\n"
             "print('\\n'.join(sys.modules))\n")
    env = {**os.environ, "VOICEGUIDE_CACHE_DIR": str(cache), "VOICEGUIDE_ENGINE": "espeak"}
    return set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                              check=True).stdout.split())


@pytest.mark.parametrize("args", [["--help"], ["plan", "psoas", "--estimate"]], ids=["help", "plan"])
def test_a_command_loads_only_the_stages_it_uses(args: list[str], tmp_path: Path) -> None:
    """Start-up is the modules a command loads: --help none of the library (nor json), ``plan`` the planning and
    not the levelling, the limiter, the encoders or the batch runner (the library's package once loaded them all)."""
    everything = _modules_loaded(args, tmp_path)
    loaded = {name for name in everything if name.startswith("voiceguide")}
    heavy = {"voiceguide.pipeline.render", "voiceguide.pipeline.batch", "voiceguide.audio.loudness",
             "voiceguide.audio.limiter", "voiceguide.audio.energies", "voiceguide.export.outputs",
             "voiceguide.export.encode"}
    assert "voiceguide.cli" in loaded and not loaded & heavy
    planning = {"voiceguide.pipeline.session", "voiceguide.plan.timeline", "voiceguide.routine.model"}
    assert (planning <= loaded) == (args[0] == "plan") and (not loaded & planning) == (args[0] == "--help")
    assert ("json" in everything) == (args[0] == "plan")  # the clip cache's keys; --help reads and writes no JSON


def test_a_plan_from_a_warm_cache_loads_nothing_that_makes_speech(tmp_path: Path) -> None:
    """``voiceguide plan`` with every line cached reads the clips' headers: the modules that make, read or
    shape speech (and the temporary files they write) stay unloaded; with a line missing they are loaded."""
    speech_making = {"voiceguide.speech.clip", "voiceguide.speech.pacing", "voiceguide.leftovers", "tempfile"}
    cold = _modules_loaded(["plan", "psoas"], tmp_path)  # an empty cache: the plan synthesizes every line to measure it
    assert speech_making <= cold
    assert not _modules_loaded(["plan", "psoas"], tmp_path) & speech_making


def test_a_render_runs_itself_and_its_processes_on_few_malloc_heaps(tmp_path: Path) -> None:
    """``render`` caps glibc's heaps (host.lean_heap) before it starts anything: every ffmpeg it runs (a stand-in
    notes its environment, then runs the real one) and every speech worker inherits the cap."""
    from voiceguide.ffmpeg import ffmpeg_exe
    from voiceguide.host import MALLOC_ARENAS

    notes = tmp_path / "ffmpeg-env.txt"
    stand_in = tmp_path / "ffmpeg"
    stand_in.write_text(f'#!/bin/sh\necho "ffmpeg ${{MALLOC_ARENA_MAX:-unset}}" >> "{notes}"\nexec "{ffmpeg_exe()}" "$@"\n')
    stand_in.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    env |= {"VOICEGUIDE_CACHE_DIR": str(tmp_path / "cache"), "VOICEGUIDE_ENGINE": "espeak",
            "VOICEGUIDE_FFMPEG": str(stand_in)}
    worker_env: list[bytes] = []
    process = subprocess.Popen([sys.executable, "-m", "voiceguide", "render", "psoas", "-q", "-o",
                                str(tmp_path / "out.mp3")], env=env, stderr=subprocess.PIPE)
    while process.poll() is None and not worker_env:  # a speech worker's environment, read while it runs
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if b"espeak_worker" in (entry / "cmdline").read_bytes():
                        environ = (entry / "environ").read_bytes().split(b"\0")
                        if f"VOICEGUIDE_FFMPEG={stand_in}".encode() in environ:
                            worker_env = environ
                except OSError:
                    pass
        time.sleep(0.01)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert f"MALLOC_ARENA_MAX={MALLOC_ARENAS}".encode() in worker_env
    ran = notes.read_text().splitlines()
    assert len(ran) >= 2 and set(ran) == {f"ffmpeg {MALLOC_ARENAS}"}, ran  # the K-weighting and the file check


def test_plan_json_is_pure_json_with_the_documented_shape() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--json", "--hold", "45"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    holds = [e for e in data["events"] if e["kind"] == "hold"]
    assert len(holds) == 7 and all(e["end"] - e["start"] == pytest.approx(45) for e in holds)
    assert data["chapters"][1]["title"] == "Table stretch (left)"
    assert data["duration"] == data["chapters"][-1]["end"]


def test_plan_table() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--estimate"])
    assert result.exit_code == 0
    assert "Table stretch (right)" in result.stdout and "(estimated)" in result.stdout


def test_render_to_file_and_per_stretch_hold(tmp_path: Path) -> None:
    out = tmp_path / "session.mp3"
    result = runner.invoke(app, ["render", "psoas", "-o", str(out), "--hold", "runners=40", "--hold", "32"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    plan = json.loads(runner.invoke(app, ["plan", "psoas", "--json", "--hold", "runners=40", "--hold", "32"]).stdout)
    assert abs(len(decode(out)) / 44100 - plan["duration"]) < 0.05
    holds = [(e["stretch"], round(e["end"] - e["start"], 3)) for e in plan["events"] if e["kind"] == "hold"]
    assert [seconds for name, seconds in holds if name == "Runner's stretch"] == [40, 40]
    assert {seconds for name, seconds in holds if name != "Runner's stretch"} == {32}


def test_render_user_file_defaults_to_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-routine.yaml").write_text("name: Mine\ndefaults: {hold: 5}\nstretches:\n  - name: Reach\n")
    result = runner.invoke(app, ["render", "my-routine.yaml"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "output" / "my-routine.mp3").stat().st_size > 1000


def test_bad_routine_is_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstretches:\n  - name: a\n    hold: abc\n")
    out = tmp_path / "out.mp3"
    result = runner.invoke(app, ["render", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {bad}:4: stretches[0].hold: must be a number of seconds, "
                                     "or a mapping of side to seconds (got 'abc')")
    assert "Traceback" not in result.output and not out.exists()


def test_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nstretches: [{name: a}]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstretches: [{name: a, hodl: 3}]\n")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2 and "did you mean 'hold'" in result.stderr


def test_list_and_voices() -> None:
    assert "psoas" in runner.invoke(app, ["list"]).stdout
    voices = runner.invoke(app, ["voices", "--language", "en"])
    assert voices.exit_code == 0 and "gmw/en-us" in voices.stdout


def test_unknown_routine_and_bad_hold() -> None:
    result = runner.invoke(app, ["plan", "nope"])
    assert result.exit_code == 2 and f"built-ins: {', '.join(builtin_names())}" in result.stderr
    result = runner.invoke(app, ["plan", "psoas", "--hold", "plank=30"])
    assert result.exit_code == 2 and "no stretch called 'plank'" in result.stderr


@pytest.mark.parametrize(("text", "seconds"), [("45", 45), ("45s", 45), ("1m30s", 90), ("1.5m", 90), ("2.5", 2.5)])
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text, "--hold") == seconds


def test_parse_seconds_rejects_garbage() -> None:
    with pytest.raises(OptionError):
        parse_seconds("soon", "--hold")


# --- Bad input and faults, end to end ------------------------------------------------

CORPUS = Path(__file__).parent / "routine" / "corpus" / "bad"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()))
def test_malformed_routines_exit_2_with_one_line_and_write_nothing(name: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["render", str(CORPUS / name)])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {CORPUS / name}:")
    assert list(tmp_path.iterdir()) == []  # not even output/


def test_render_verify(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    result = runner.invoke(app, ["render", "desk-break", "-o", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "voiceguide.cli", *args]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "VOICEGUIDE_CACHE_DIR": str(cache)}


def _wait_for_encoding(folder: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the encoder has written part of the temporary file beside the target."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the render ended before it could be interrupted"
        if any(p.stat().st_size > 50_000 for p in folder.glob(".*.part*")):  # the encoder's parts, too
            return
        time.sleep(0.05)
    raise AssertionError("encoding never started")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"])
def test_interrupted_render_keeps_the_previous_file(sig: signal.Signals, tmp_path: Path, _isolated_cache: Path) -> None:
    out = tmp_path / "session.mp3"
    out.write_bytes(b"the previous session")
    # Holds of 20 minutes make a 2-hour session: encoding takes seconds, long enough to interrupt.
    process = subprocess.Popen(_cli("render", "psoas", "--hold", "1200", "-q", "-o", str(out)), env=_env(_isolated_cache),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_encoding(tmp_path, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert out.read_bytes() == b"the previous session"
    if sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL  # nothing can run; the rename simply never happens
    else:
        assert process.returncode == 130
        assert stderr.decode().strip() == "interrupted: nothing was written"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["session.mp3"]  # temporary file removed


def _limit_file_size() -> None:
    # A "full disk" for this process and its children: writes past 200 kB fail with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_full_disk_is_a_clear_error_and_keeps_the_previous_file(tmp_path: Path, _isolated_cache: Path) -> None:
    out = tmp_path / "session.mp3"
    out.write_bytes(b"the previous session")
    subprocess.run(_cli("plan", "psoas"), env=_env(_isolated_cache), capture_output=True, check=True)  # speech cached
    result = subprocess.run(_cli("render", "psoas", "-q", "-o", str(out)), env=_env(_isolated_cache),
                            capture_output=True, preexec_fn=_limit_file_size, timeout=120)
    assert result.returncode == 4
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"error: {out}: cannot write: the disk is full")
    assert out.read_bytes() == b"the previous session"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.mp3"]


def test_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root ignores permissions: use a folder the kernel refuses
            folder = Path("/sys/kernel")
        result = runner.invoke(app, ["render", "desk-break", "-o", str(folder / "s.mp3")])
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert result.exit_code == 4
    assert result.stderr.strip().startswith(f"error: {folder}: cannot write the output here")


def test_two_renders_sharing_a_cold_cache_both_succeed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outs = [tmp_path / "a.mp3", tmp_path / "b.mp3"]
    processes = [subprocess.Popen(_cli("render", "desk-break", "-o", str(out), "--verify", "--json"), env=_env(cache),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for out in outs]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    entries = list(cache.glob("*/*.clip"))
    store = ClipCache(cache)
    assert entries and all(store.get(p.stem) is not None for p in entries)  # every entry passes its checksum
    assert not list(cache.glob("*/.tmp-*"))
    plan = json.loads(runner.invoke(app, ["plan", "desk-break", "--json"], env={"VOICEGUIDE_CACHE_DIR": str(cache)}).stdout)
    assert len(entries) == len({e["text"] for e in plan["events"] if e["kind"] == "speech" and e["role"] != "tone"})
    # Each render timed its session from the clips it synthesized (espeak is not bit-exact between cold runs,
    # so the two may differ by a few milliseconds per line): compare each file with the plan it wrote.
    for out in outs:
        own = json.loads(out.with_suffix(".json").read_text())
        assert abs(decoded_length(out) / 44100 - own["duration"]) <= 0.001


# --- Batch renders, the cache command, progress ---------------------------------------

def test_batch_render_of_a_folder_and_a_builtin(tmp_path: Path) -> None:
    folder = tmp_path / "routines"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.yaml").write_text(f"name: {name}\ndefaults: {{hold: 10}}\nstretches:\n  - name: Reach {name}\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(folder), "desk-break", "--output-dir", str(out), "-j", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.mp3", "b.mp3", "desk-break.mp3"]
    for name in ("a", "b"):
        plan = json.loads(runner.invoke(app, ["plan", str(folder / f"{name}.yaml"), "--json"]).stdout)
        assert abs(decoded_length(out / f"{name}.mp3") / 44100 - plan["duration"]) < 0.001
    assert result.stderr == ""


def test_batch_validates_everything_before_rendering(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = runner.invoke(app, ["render", "desk-break", str(bad), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    result = runner.invoke(app, ["render", "desk-break", "psoas", "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code == 2 and "--output-dir" in result.stderr


def test_progress_is_plain_lines_when_piped_and_silent_with_q(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", "desk-break", "-o", str(tmp_path / "s.mp3"), "--verify"])
    lines = result.stderr.splitlines()
    assert lines[0] == "speech: 0%" or lines[0].startswith("speech: ")
    assert "encoding: 0%" in lines and "encoding: 100%" in lines and "verifying: 100%" in lines
    assert "\r" not in result.stderr
    quiet = runner.invoke(app, ["render", "desk-break", "-o", str(tmp_path / "s.mp3"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_cache_info_and_clear(_isolated_cache: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["render", "desk-break", "-q", "-o", str(tmp_path / "s.mp3")])  # speech and limited clips
    assert list(_isolated_cache.glob("limited/*/*.clip"))
    count = len(list(_isolated_cache.glob("*/*.clip")))
    info = runner.invoke(app, ["cache", "info"])
    assert info.exit_code == 0 and info.stdout.startswith(f"{_isolated_cache}: {count} clips") and count > 10
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.stdout.strip() == f"removed {count} clips from {_isolated_cache}"
    assert not list(_isolated_cache.glob("*/*.clip")) and not list(_isolated_cache.glob("limited/*/*.clip"))
    assert runner.invoke(app, ["cache", "shrink"]).exit_code == 2


def test_render_format_from_extension_with_sidecars(tmp_path: Path) -> None:
    out = tmp_path / "desk.ogg"
    result = runner.invoke(app, ["render", "desk-break", "-o", str(out), "--sidecars", "-q", "--verify"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"OggS"
    assert {p.suffix for p in tmp_path.iterdir()} == {".ogg", ".lrc", ".vtt", ".json"}
    flac = runner.invoke(app, ["render", "desk-break", "--format", "flac", "--output-dir", str(tmp_path), "-q"])
    assert flac.exit_code == 0 and (tmp_path / "desk-break.flac").read_bytes()[:4] == b"fLaC"
    bad = runner.invoke(app, ["render", "desk-break", "--format", "aiff", "-o", str(tmp_path / "x.aiff")])
    assert bad.exit_code == 2 and "--format" in bad.stderr


def test_preview_speaks_one_line_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "voice.wav"
    result = runner.invoke(app, ["preview", "Switch sides, and breathe out slowly.", "--voice", "en-us", "-o", str(out)])
    assert result.exit_code == 0, result.output
    samples = decode(out)
    assert 1.0 < len(samples) / 44100 < 5.0 and max(abs(v) for v in samples) > 5000
    assert runner.invoke(app, ["preview", "  ", "-o", str(out)]).exit_code == 2


def test_engine_command_renders_and_reports_its_failures(tmp_path: Path) -> None:
    tts = Path(__file__).parent / "speech" / "fake_tts.py"
    command = f"{sys.executable} {tts} --out {{output}}"
    out = tmp_path / "s.mp3"
    result = runner.invoke(app, ["render", "desk-break", "-o", str(out), "-q", "--engine-command", command, "--verify"])
    assert result.exit_code == 0, result.output
    from mutagen.mp3 import MP3

    assert (MP3(out).info.channels, MP3(out).info.bitrate) == (1, 96000)  # voice only: mono at 96k by default
    missing = runner.invoke(app, ["render", "desk-break", "-o", str(out), "--engine-command", "piper --model x.onnx"])
    assert missing.exit_code == 2 and "{output}" in missing.stderr
    broken = runner.invoke(app, ["render", "desk-break", "-o", str(out), "--engine-command", "no-such-tts {output}"])
    assert broken.exit_code == 3 and broken.stderr.startswith("error: speech program not found")


def test_render_with_music_and_a_routine_that_names_it(tmp_path: Path) -> None:
    from conftest import write_tone

    write_tone(tmp_path / "bed.wav", 10.0, 44100, freq=800.0, amplitude=0.3)
    routine = tmp_path / "mine.yaml"
    routine.write_text("name: Mine\nmusic: [bed.wav]\ndefaults: {hold: 10}\nstretches:\n  - name: Reach\n")
    out = tmp_path / "mine.mp3"
    result = runner.invoke(app, ["render", str(routine), "-o", str(out), "-q", "--verify"])
    assert result.exit_code == 0, result.output
    from mutagen.mp3 import MP3

    assert MP3(out).info.channels == 2 and MP3(out).info.bitrate == 128000
    bad = runner.invoke(app, ["render", "desk-break", "-o", str(tmp_path / "x.mp3"), "--music", str(routine)])
    assert bad.exit_code == 2 and "cannot be read as audio" in bad.stderr and not (tmp_path / "x.mp3").exists()


def test_cover_option(tmp_path: Path) -> None:
    from mutagen.id3 import ID3

    from voiceguide.export.cover import draw_cover

    image = tmp_path / "mine.png"
    image.write_bytes(draw_cover("my own"))
    out = tmp_path / "s.mp3"
    assert runner.invoke(app, ["render", "desk-break", "-o", str(out), "-q", "--cover", str(image)]).exit_code == 0
    assert ID3(out).getall("APIC")[0].data == image.read_bytes()
    assert runner.invoke(app, ["render", "desk-break", "-o", str(out), "-q", "--no-cover"]).exit_code == 0
    assert ID3(out).getall("APIC") == []
    bad = runner.invoke(app, ["render", "desk-break", "-o", str(tmp_path / "x.mp3"), "--cover", str(out)])
    assert bad.exit_code == 2 and "not a PNG or JPEG" in bad.stderr and not (tmp_path / "x.mp3").exists()
