"""Sampling on top of ``Matcher``: pure functions with an explicit RNG (numpy only:
nothing in here imports torch), and thin classes that hold their configuration."""
