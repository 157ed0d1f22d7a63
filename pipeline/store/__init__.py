"""The database: SQLModel tables (:mod:`.models`), engines, sessions and migrations (:mod:`.db`),
read-only SQL for users (:mod:`.readonly`) and full-text search over captions (:mod:`.search`).

The lowest layer with ``config`` and ``photos``: imports nothing else of the pipeline.
"""
