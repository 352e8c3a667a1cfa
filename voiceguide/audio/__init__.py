"""Stage 4, audio: the session as a PCM stream, levelled, with tones and an optional music bed.

``assemble`` streams clips and silences at their planned samples; ``loudness``
aims the session at its LUFS target under a true-peak ceiling; ``music`` lays a
ducked bed under the voice; ``tones`` makes the chimes and the bell.
"""

TARGET_LUFS = -16.0  # every session's loudness target (here, not in loudness: options name it without the levelling)
