"""Rendering several sessions at once, one per core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from voiceguide.errors import VoiceguideError
from voiceguide.export.outputs import Sidecars
from voiceguide.pipeline.options import BatchItem, RenderResult, SessionOptions, _arguments, _check_type
from voiceguide.pipeline.outputs import plan_batch
from voiceguide.pipeline.render import _check_call, output_format, render_session
from voiceguide.pipeline.session import _lengths, check_voice, engine_for, session_script, voice_settings
from voiceguide.plan.script import check_script
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Engine

if TYPE_CHECKING:
    pass



def render_many(items: Sequence[BatchItem], options: SessionOptions | None = None, *, jobs: int | None = None,
                engine: Engine | None = None, cache: ClipCache | None = None, verify: bool = False,
                done: Callable[[BatchItem, RenderResult | VoiceguideError], None] | None = None,
                extras: Sidecars | None = None) -> list[RenderResult | VoiceguideError]:
    """Render several routines, ``jobs`` at a time (default: one per core); results in input order.

    Speech for every routine is synthesized first (each distinct line once,
    spread over the cores), then the sessions are levelled, assembled and
    encoded in parallel worker processes. A render that fails does not stop the others: its error is its
    result. ``done`` hears about each render, in order, once it has finished.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from voiceguide.host import usable_cores

    options, engine, cache = _arguments(options, engine, cache)
    engine = engine_for(items[0].routine if items and isinstance(items[0], BatchItem) else None, options, engine)
    _check_call(done, jobs, extras)
    for item in items:  # every name, format and bit rate checked before any work
        _check_type("items", item, BatchItem)
        output_format(item.output, options, item.routine)
        check_voice(voice_settings(item.routine, options.voice), engine)
        check_script(item.routine, options.script)
    plan_batch(items, options, extras)
    for item in items:  # warm the cache: the renders then only read clips
        _lengths(session_script(item.routine, options, engine, cache), item.routine, options, engine, cache,
                 estimate=False)
    workers = max(1, min(jobs or usable_cores(), len(items)))
    # Processes, not threads: levelling and assembly run Python code, and renders
    # sharing one interpreter would take turns on its lock. Forked workers inherit
    # the (already warm) engine and cache objects as they are.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    results: list[RenderResult | VoiceguideError] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            # The renders already share the cores: each encodes on its share of them.
            share = max(1, usable_cores() // workers)
            futures = [pool.submit(_render_one, item, options, engine, cache, verify, extras, share) for item in items]
            for item, future in zip(items, futures, strict=True):
                result = future.result()
                if done is not None:
                    done(item, result)
                results.append(result)
        except BaseException:
            # Ctrl-C or SIGTERM: stop the workers too (SIGTERM becomes KeyboardInterrupt in them, as
            # here, so each removes its temporary file and no render finishes behind our back).
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _render_one(item: BatchItem, options: SessionOptions, engine: Engine, cache: ClipCache, verify: bool,
                extras: Sidecars | None, jobs: int) -> RenderResult | VoiceguideError:
    """One render of a batch, in a worker process; our errors come back as results."""
    try:
        return render_session(item.routine, item.output, options, engine=engine, cache=cache, verify=verify,
                              extras=extras, jobs=jobs, source=item.source)
    except VoiceguideError as error:
        return error
