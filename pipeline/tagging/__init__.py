"""The worker side: a batch of photo ids in, rows out, whatever the profile (:mod:`.batch`),
and a personalized question about one photo (:mod:`.ask`).

Imports people, the profile boundary, recognition, the store and photos; never ingest or the CLI.
"""
