"""Enrolled people: who they are (:mod:`.registry`), enrolment from reference photos
(:mod:`.enrolment`), rename/merge/forget/corrections (:mod:`.changes`), and the worker's cached
view of everyone enrolled (:mod:`.index`).

Imports the store, recognition and the profile boundary; never ingest, tagging or the CLI.
"""
