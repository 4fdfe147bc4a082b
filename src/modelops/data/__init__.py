"""Data: the example simulator, raw-data sources, validation and the split."""
