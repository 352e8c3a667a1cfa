"""Stage 6, the library API: the whole pipeline as calls (routine -> script -> plan -> speech -> audio -> export).

Everything the CLI and the server do is one call here, so voiceguide can be
used without them. ``options`` holds what a session can be asked for,
``session`` plans it, ``render`` writes one, ``batch`` several, ``outputs``
checks every file a render will write before any work.
"""

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

__all__ = [
    "DEFAULT_OUTPUT_DIR", "ENCODING", "SYNTHESIS", "VERIFY", "BatchItem", "Progress", "RenderResult",
    "SessionOptions", "Sidecars", "as_routine", "check_routine", "check_voice", "default_output", "engine_for",
    "estimate_length", "output_format", "plan_batch", "plan_outputs", "plan_session", "preview_line",
    "render_many", "render_session", "safe_stem", "session_clips", "session_script", "session_tags",
    "voice_settings",
]
