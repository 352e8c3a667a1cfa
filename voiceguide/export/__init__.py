"""Stage 5, export: the PCM stream becomes a tagged file with chapters, written all or nothing.

``formats`` is the registry of output formats; ``encode`` writes a file
atomically (MP3 via ``mp3``, the rest via ffmpeg); ``tags`` writes tags,
chapters and covers; ``verify`` reads a file back; ``sidecars`` and ``cover``
make the extra files and the drawn cover.
"""
