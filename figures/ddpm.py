"""The digit-DDPM numbers behind Table 1 (b), Fig. 5 and Fig. 7, computed once per run and cached.

`numerics.unet_numbers.digit_ddpm_numbers` trains (or loads) the tiny diffusers DDPM of
`numerics.unet_ddpm` and returns the detection and steering numbers; the three figures read
the same dict, cached in the figures' model cache (`figures.common.cached`) under the
settings that produced it. Needs the ``[torch]`` extra (``figures.TORCH_EXTRA``).
"""
from __future__ import annotations

import os

from figures.common import Config, cached


def ddpm_numbers(config: Config) -> dict:
    """``digit_ddpm_numbers(fast=config.fast)``, its trained weights cached under ``config.cache``.

    The DDPM's seeds are its own (`numerics.unet_ddpm.DDPMConfig`); ``config.seed`` does not
    change them.
    """
    from numerics.unet_ddpm import DDPMConfig
    from numerics.unet_numbers import digit_ddpm_numbers

    ddpm = DDPMConfig.fast() if config.fast else DDPMConfig()
    params = dict(ddpm=ddpm.params(), fast=config.fast)

    def compute():
        # the trained weights in a folder of their own, beside the figures' cache entries
        return {}, digit_ddpm_numbers(fast=config.fast, cache=os.path.join(config.cache, "ddpm"), threads=1)

    return cached(config, "digit_ddpm_numbers", params, compute)[1]
