"""Aligner training (the PLVM release has none): only the Aligner learns; the reference encoder and
the LVLM stay frozen. Public entry point: :func:`pipeline.plvm.train.train_aligner`.

- :mod:`.config`: :class:`TrainConfig` / :class:`TrainResult` / :class:`EvalPoint`.
- :mod:`.data`: identity split (held-out identities and queries), recognition pairs, QA items.
- :mod:`.rows`: token rows with answer labels, built with the inference prompt code.
- :mod:`.features`: frozen reference / image features (optionally cached).
- :mod:`.forward`: the differentiable LVLM pass and its logits (concept column appended).
- :mod:`.loss`: weighted answer-token cross-entropy and yes/no accuracy.
- :mod:`.init`: data-dependent initialisation of a new Aligner.
- :mod:`.schedule`, :mod:`.state`: LR schedule; checkpoints and resumable training state.
- :mod:`.evaluate`: held-out recognition through an evaluator the caller passes in
  (``pipeline train`` passes ``pipeline eval recognition``'s code).
- :mod:`.loop`: the loop itself.
- :mod:`.toy`: the CPU demo's trainable random bundle (bench/train_toy.py, tests).

Importing this package does no work.
"""
