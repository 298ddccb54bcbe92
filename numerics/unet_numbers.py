"""All the digit-DDPM numbers in one call: the Table 1 / Fig. 5 detection numbers and the Fig. 7
steering numbers, from one trained (or cached) `numerics.unet_ddpm` model.

Command line: ``python -m numerics.unet_numbers [--fast] [--cache DIR] [--json FILE] [--no-steering]``
(needs the ``[torch]`` extra).
"""
from __future__ import annotations

import os
import time

from numerics.unet_ddpm import DDPMConfig, train_ddpm
from numerics.unet_detection import detection_numbers
from numerics.unet_steering import DEFAULT_STRENGTHS, steering_numbers

__all__ = ["digit_ddpm_numbers", "main"]
__doctest_requires__ = {("digit_ddpm_numbers",): ["torch", "diffusers"]}


def digit_ddpm_numbers(*, fast: bool = False, cache: str | None = None, threads: int | None = 1,
                       steering: bool = True) -> dict:
    """Train (or load) the digit DDPM once; return the Table 1 / Fig. 5 numbers
    (`numerics.unet_detection.detection_numbers`) and the Fig. 7 numbers
    (`numerics.unet_steering.steering_numbers`) as ``{"detection": ..., "steering": ...}``.

    ``fast=True``: `DDPMConfig.fast` and fewer samples, strengths and seeds (for tests).

    Training takes about a minute on a CPU even with ``fast=True``, so this example is shown
    but not run as a doctest:

    >>> numbers = digit_ddpm_numbers(fast=True, cache="results/cache")   # doctest: +SKIP
    >>> sorted(numbers), numbers["detection"]["samples"]["n"]            # doctest: +SKIP
    (['detection', 'seconds', 'steering'], 200)
    """
    config = DDPMConfig.fast() if fast else DDPMConfig()
    began = time.perf_counter()
    trained = train_ddpm(config, cache=cache, threads=threads)
    numbers = dict(detection=detection_numbers(config, n_samples=200 if fast else 500, trained=trained,
                                               threads=threads, t_sweep=(10, 50) if fast else (10, 50, 100, 200)))
    if steering:
        numbers["steering"] = steering_numbers(
            config, trained=trained, threads=threads, n_samples=50 if fast else 200,
            seeds=(0, 1) if fast else (0, 1, 2), strengths=DEFAULT_STRENGTHS[::2] if fast else DEFAULT_STRENGTHS)
    numbers["seconds"] = time.perf_counter() - began
    return numbers


def _print(numbers: dict) -> None:
    detection = numbers["detection"]
    model, samples = detection["model"], detection["samples"]
    print(f"UNet2DModel: {model['n_parameters']} parameters, trained in {model['train_seconds']:.0f} s"
          f"{' (cached)' if model['from_cache'] else ''}; {samples['n_memorised']} of {samples['n']} samples "
          f"memorised ({samples['memorised_copies_of_duplicated']} copies of duplicated digits)")
    print(f"{'method':48s} {'AUROC':>7s} {'TPR@1%':>7s} {'s/sample':>9s}")
    for name, row in detection["methods"].items():
        print(f"{name:48s} {row['auroc']:7.3f} {row['tpr_at_1pct_fpr']:7.3f} {row['seconds_per_sample']:9.5f}")
    print("Std AUROC by t:", {t: round(v, 3) if v is not None else None for t, v in detection["std_auroc_by_t"].items()})
    for response, groups in numbers.get("steering", {}).get("summary", {}).items():
        for group, metrics in groups.items():
            cells = ", ".join(f"{key} {value['mean']:+.3f} ± {value['std']:.3f}" for key, value in metrics.items()
                              if isinstance(value, dict))
            print(f"steering {response:12s} {group:11s} (n={metrics['n']}): {cells}")
    print(f"wall time {numbers['seconds']:.0f} s")


def main(argv=None) -> int:
    """``python -m numerics.unet_numbers [--fast] [--cache DIR] [--json FILE] [--no-steering]``.

    >>> try:
    ...     main(["--help"])
    ... except SystemExit as stop:
    ...     print("exit code", stop.code)
    usage: python -m numerics.unet_numbers [-h] [--fast] [--cache CACHE]...
    exit code 0
    """
    import argparse
    import json

    from numerics.checkpoint import atomic_write_text, jsonable

    parser = argparse.ArgumentParser(prog="python -m numerics.unet_numbers",
                                     description="Train the digit DDPM; print detection and steering numbers.")
    parser.add_argument("--fast", action="store_true", help="the small variant used by the tests")
    parser.add_argument("--cache", default=os.path.join("results", "cache"), help="trained-weights cache folder")
    parser.add_argument("--json", help="write every number to this JSON file")
    parser.add_argument("--no-steering", action="store_true")
    args = parser.parse_args(argv)
    numbers = digit_ddpm_numbers(fast=args.fast, cache=args.cache, steering=not args.no_steering)
    _print(numbers)
    if args.json:
        atomic_write_text(args.json, json.dumps(jsonable(numbers), indent=1))
    return 0


if __name__ == "__main__":                                   # pragma: no cover
    raise SystemExit(main())
