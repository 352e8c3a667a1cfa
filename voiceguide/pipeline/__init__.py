"""Stage 6, the library API: the whole pipeline as calls (routine -> script -> plan -> speech -> audio -> export).

Everything the CLI and the server do is one call here, so voiceguide can be
used without them. ``options`` holds what a session can be asked for,
``session`` plans it, ``render`` writes one, ``batch`` several, ``outputs``
checks every file a render will write before any work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceguide._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from voiceguide.export.outputs import Sidecars, safe_stem
    from voiceguide.pipeline.batch import render_many
    from voiceguide.pipeline.options import (
        DEFAULT_OUTPUT_DIR,
        ENCODING,
        SYNTHESIS,
        VERIFY,
        BatchItem,
        Progress,
        RenderResult,
        SessionOptions,
        as_routine,
    )
    from voiceguide.pipeline.outputs import plan_batch, plan_outputs
    from voiceguide.pipeline.render import default_output, output_format, preview_line, render_session, session_tags
    from voiceguide.pipeline.session import (
        check_routine,
        check_voice,
        engine_for,
        estimate_length,
        plan_session,
        session_clips,
        session_script,
        voice_settings,
    )

# Names are imported on first use (PEP 562): `voiceguide plan` needs the session planning, not the levelling,
# the encoders or the batch runner that importing them all here loaded (8-10 ms of its start-up). Sidecars and
# safe_stem live in export.outputs; render imports them from there, so they are looked up through it.
_EXPORTS = {
    "Sidecars": "render", "safe_stem": "render", "default_output": "render", "output_format": "render",
    "preview_line": "render", "render_session": "render", "session_tags": "render", "render_many": "batch",
    "DEFAULT_OUTPUT_DIR": "options", "ENCODING": "options", "SYNTHESIS": "options", "VERIFY": "options",
    "BatchItem": "options", "Progress": "options", "RenderResult": "options", "SessionOptions": "options",
    "as_routine": "options", "plan_batch": "outputs", "plan_outputs": "outputs", "check_routine": "session",
    "check_voice": "session", "engine_for": "session", "estimate_length": "session", "plan_session": "session",
    "session_clips": "session", "session_script": "session", "voice_settings": "session",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "DEFAULT_OUTPUT_DIR", "ENCODING", "SYNTHESIS", "VERIFY", "BatchItem", "Progress", "RenderResult",
    "SessionOptions", "Sidecars", "as_routine", "check_routine", "check_voice", "default_output", "engine_for",
    "estimate_length", "output_format", "plan_batch", "plan_outputs", "plan_session", "preview_line",
    "render_many", "render_session", "safe_stem", "session_clips", "session_script", "session_tags",
    "voice_settings",
]
