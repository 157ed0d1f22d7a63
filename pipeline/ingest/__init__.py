"""From files on disk to queued work: the folder watcher and its stabilizer (:mod:`.watcher`,
:mod:`.complete`), file -> ``photos`` row (:mod:`.ingestor`), and sending ids to the workers plus
the sweeper that re-sends what the broker lost (:mod:`.dispatch`).

Imports the store, photos and the broker contract; never tagging, people or the CLI.
"""
