"""Data the pipeline reads or makes for measuring and training: the release's evaluation formats
(Yo'LLaVA/MyVLM style; :mod:`.release`), the procedurally drawn toy identities (:mod:`.toy`) and the demo's sample
album from public-domain photos (:mod:`.sample_album`).

Imports nothing of the pipeline but ``errors``; nothing here loads a model.
"""
