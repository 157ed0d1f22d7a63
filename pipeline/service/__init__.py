"""``pipeline run`` as one supervised command: the embedded broker, the worker (and Flower) as
child processes, the watcher, the sweeper, progress lines and a clean stop (:mod:`.runner`,
:mod:`.progress`).

Imports ingest, the broker and the store; the worker runs as a separate process (``workers/``).
"""
