"""The web function's own code."""
