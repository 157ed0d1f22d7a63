"""Personalized photo-album tagger: enroll people once, tag every new photo with names, captions and answers."""

__version__ = "0.1.0"
