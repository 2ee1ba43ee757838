"""KerasTuner searches for keras_art (``python -m tuning.search``).

- `tuning.space`: the hyperparameters, their ranges and the named spaces;
- `tuning.hypermodel`: `PaintingHyperModel`, one trial = one short keras_art run;
- `tuning.results`: results.csv, summary.md and best_config.json;
- `tuning.searcher`: `search`, the library function behind the command.
"""
