"""The diffusion figures (fig2, memorisation_vs_n) in their fast variant: compute → checks → draw.

Each module follows the figure protocol: ``compute(config)`` returns the numbers (with
``parameters``), ``checks(numbers)`` confronts them with the theory (tolerances stated in the
modules), ``draw(numbers)`` returns a matplotlib Figure. The numbers must survive a JSON round
trip (they go into the manifest) and give the same checks afterwards.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from figures import fig2_sampling, memorisation_vs_n
from figures.common import Config
from numerics.checkpoint import jsonable
from numerics.denoisers import f_emp


MODULES = {"fig2": fig2_sampling, "memorisation_vs_n": memorisation_vs_n}


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figures")
    config = Config(output=str(folder / "out"), cache=str(folder / "cache"), fast=True, progress=False)
    return {name: module.compute(config) for name, module in MODULES.items()}


@pytest.fixture(params=list(MODULES))
def built(request, computed):
    return MODULES[request.param], computed[request.param]


def test_every_check_holds(built):
    module, numbers = built
    checks = module.checks(numbers)
    assert checks and all(set(c) == {"claim", "measured", "bound", "holds"} for c in checks)
    failed = [(c["claim"], c["measured"], c["bound"]) for c in checks if not c["holds"]]
    assert not failed, failed


def test_numbers_survive_the_manifest(built):
    module, numbers = built
    assert numbers["parameters"] and numbers["caption"] and numbers["paper"]
    reloaded = json.loads(json.dumps(jsonable(numbers)))
    assert module.checks(reloaded) == jsonable(module.checks(numbers))


def test_draw_returns_a_figure(built):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    module, numbers = built
    fig = module.draw(json.loads(json.dumps(jsonable(numbers))))
    assert isinstance(fig, Figure) and fig.axes
    plt.close(fig)


def test_fig2_rows_are_data(monkeypatch):
    """A new kind of model is one builder and one spec (as a trained multi-noise model will be): here the
    empirical denoiser eq. (3), which copies training samples in l2 and is not homogeneous."""
    def empirical(spec, config):
        X = fig2_sampling.datasets.faces(n=spec.options["n"], size=config.pick(25, 16), seed=config.seed).X
        return fig2_sampling.Model(lambda Y, sigma: f_emp(Y, X, sigma), X, np.zeros((X.shape[0], 1)), None,
                                   dict(n=X.shape[1]))

    spec = fig2_sampling.ModelSpec("faces_empirical", "faces, eq. (3)", "faces", "empirical", "memorising",
                                   dict(n=5), homogeneous=False)
    monkeypatch.setattr(fig2_sampling, "MODELS", (spec,))
    monkeypatch.setitem(fig2_sampling.BUILDERS, "empirical", empirical)
    numbers = fig2_sampling.compute(Config(fast=True, progress=False))
    row = numbers["models"]["faces_empirical"]
    assert row["unclamped_l2_ratio"] == 1.0 and "single_active_not_copied" not in row
    assert [c["holds"] for c in fig2_sampling.checks(numbers)] == [True]


def test_memorisation_vs_n_regimes(computed):
    numbers = computed["memorisation_vs_n"]
    cells = numbers["cells"]
    K = numbers["parameters"]["K"]
    # the prediction is 1 with only single-sample modes (n ≤ K) and 0 once every mode holds two or more
    assert all(c["predicted_min"] == 1.0 for c in cells if c["n"] <= K)
    assert all(c["predicted_max"] <= 0.5 for c in cells if c["n"] >= 2 * K)
    # the exact-loss comparison exists wherever the block formula would keep eq. (9) per sample
    assert any("loss_ratios" in c for c in cells)
    assert all(r["block"] < 1 < r["exact"] for c in cells for r in c.get("loss_ratios", []))
