"""The card-fraud example: a seeded simulator. Optional: the template runs without it."""
