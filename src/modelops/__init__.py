"""Card-fraud model operations library."""
