"""Sampling on top of ``Matcher``: pure functions with an explicit RNG (numpy only:
nothing in here imports torch), and thin classes that hold their configuration."""

from .asap import ASAp, ASApSample
from .awrs import AWRS, AWRSDraw, awrs_step, geometric_awrs, recursive_awrs
from .lm import BatchLM, masked_token, sample_tokens
from .smc import RESAMPLING, SMC, SMCResult, smc

#: the samplers ``generate(sampler=...)`` offers
SAMPLERS = ("masked", "awrs", "smc", "asap")

__all__ = [
    "SAMPLERS",
    # exact samplers (AWRS arXiv 2504.05410, SMC over it, ASAp arXiv 2405.21047)
    "AWRS", "AWRSDraw", "recursive_awrs", "geometric_awrs", "awrs_step",
    "SMC", "SMCResult", "smc", "RESAMPLING",
    "ASAp", "ASApSample",
    # the LM protocol and the plain masked loop
    "BatchLM", "masked_token", "sample_tokens",
]
