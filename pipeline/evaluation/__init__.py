"""Evaluation on the release's data formats (Yo'LLaVA/MyVLM style identity folders and questions).

- :mod:`pipeline.datasets.release`: the recognition folders (one per identity) and the
  multiple-choice question JSON.
- :mod:`pipeline.evaluation.metrics`: recognition and question-answering scores, threshold sweep,
  ROC/AUC, JSON export.
- :mod:`pipeline.evaluation.render`: the terminal table and the ROC plot.

Nothing here loads a model; the runner that asks the model questions lives elsewhere and hands
its answers to these functions.
"""
