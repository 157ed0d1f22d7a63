"""Who a face is: YuNet detection and SFace embeddings (:mod:`.faces`), the one-person-once
assignment (:mod:`.matching`), and how a profile's recognition evidence combines with face
matches (:mod:`.fusion`).

Pure models and numerics: imports nothing of the pipeline but ``config``.
"""
