"""PLVM model layer: reference encoder (DINOv2), Aligner, LLaVA-1.5 with concept tokens.

Importing this package does no work and imports no third-party module; import the submodules
(``pipeline.plvm.engine`` for the worker's single entry point). See docs/plvm.md for the model.
"""
