"""Speech workers load only what they use: every module they import is memory in every worker and every forked line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("worker", ["espeak_worker", "piper_worker"])
def test_a_worker_module_imports_no_other_stage(worker: str) -> None:
    probe = (f"import sys, voiceguide.speech.{worker}; import json; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('voiceguide', 'msgspec', 'yaml', "
             "'pydub', 'typer')))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)
    allowed = {"voiceguide", "voiceguide.speech", f"voiceguide.speech.{worker}", "voiceguide.speech.words",
               "voiceguide._lazy",  # the packages' lazy-export helper: the standard library only
               "voiceguide.host", "voiceguide.speech.shaping",  # audioop and the shaping of a line: the same
               "voiceguide.errors"}  # shaping's own errors: a module of class statements, importing nothing
    assert set(loaded) <= allowed
