"""Stage 5, export: the PCM stream becomes a tagged file with chapters, written all or nothing.

``formats`` is the one registry of output formats (extension, codec, chapter and
cover writer, bit rates); ``encode`` writes a file atomically (MP3 via ``mp3``
with its ID3 tag from ``id3``, the rest via ffmpeg); ``tags`` writes tags,
chapters and covers; ``text`` makes every written string safe; ``verify`` reads
a file back; ``sidecars`` and ``cover`` make the extra files and the drawn cover.
"""
