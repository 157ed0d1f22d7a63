"""The ``pipeline`` command: one module per command group on one Typer app (:mod:`.app`),
registered by :mod:`.main`. The top layer: may import any package of the pipeline, lazily.
"""
