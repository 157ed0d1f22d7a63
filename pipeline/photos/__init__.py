"""Photo files: which paths are photos and their hash (:mod:`.files`, no image library), and safe
decoding (:mod:`.decode`: EXIF orientation and dates, HEIC/HEIF, decompression-bomb guard).

The lowest layer with ``store`` and ``config``: imports nothing else of the pipeline.
"""
