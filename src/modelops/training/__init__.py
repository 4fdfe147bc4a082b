"""Training: features, the model, metrics with bootstrap intervals, evaluation, lineage."""
