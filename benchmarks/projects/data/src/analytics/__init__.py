"""The data function's own code."""
