"""Every error voiceguide raises on purpose, and the exit code the CLI gives it.

Library code raises these; only the CLI edge catches them, prints the one-line
message and exits with the code below (documented in the README).
"""

from __future__ import annotations

EXIT_INPUT = 2  # the routine, the plan or the command line is wrong
EXIT_SPEECH = 3  # the speech engine failed
EXIT_OUTPUT = 4  # encoding or writing the output failed
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


class VoiceguideError(Exception):
    """Base of every error voiceguide raises deliberately."""

    exit_code = 1


class RoutineError(VoiceguideError):
    """A routine file is missing, unreadable or invalid."""

    exit_code = EXIT_INPUT


class PlanError(VoiceguideError):
    """The routine is valid but its timeline cannot be built (speech does not fit)."""

    exit_code = EXIT_INPUT


class OptionError(VoiceguideError):
    """A command-line or library option has a bad value."""

    exit_code = EXIT_INPUT


class SpeechError(VoiceguideError):
    """The speech engine is missing, hung or produced no usable audio."""

    exit_code = EXIT_SPEECH


class EncoderError(VoiceguideError):
    """The audio encoder is missing or failed."""

    exit_code = EXIT_OUTPUT


class OutputError(VoiceguideError):
    """The output file could not be written."""

    exit_code = EXIT_OUTPUT


class VerifyError(VoiceguideError):
    """A written file does not decode to its plan's duration and chapters (render --verify)."""

    exit_code = EXIT_OUTPUT

