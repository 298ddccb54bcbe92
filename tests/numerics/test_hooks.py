"""numerics.hooks on a tiny random diffusers UNet2DModel: collect against hand-written hooks,
steer against a hand-patched forward, and hooks always removed."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from optional_deps import require

torch = require("torch")
diffusers = require("diffusers")

from numerics.hooks import collect, denoising_window, steer, torch_threads  # noqa: E402

# float32 network: a spatial mean of ≤ 64 float32 values differs from its float64 mean by
# ≤ 64·2⁻²⁴ relative ≈ 4e-6 in the worst case, ~1e-7 typically; maxima are exact.
FLOAT32 = 1e-6
LAYERS = ["up_blocks.0.resnets.0", "up_blocks.0.resnets.1.nonlinearity", "up_blocks.1.resnets.1"]


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    model = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                  layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                                  up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                  add_attention=False)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):          # tiny model: several threads only add hand-off time
        yield


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


@pytest.fixture(scope="module")
def inputs():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(5, 1, 8, 8, generator=generator), torch.tensor(50)


def forward(model, inputs):
    with torch.no_grad():
        return model(*inputs).sample


def hand_hooks(model, names, inputs):
    """Reference: forward hooks that keep every raw output, pooled afterwards in float64 numpy."""
    raw = {name: [] for name in names}
    handles = [model.get_submodule(name).register_forward_hook(
        lambda module, args, output, name=name: raw[name].append(output.detach().double().numpy().copy()))
        for name in names]
    forward(model, inputs)
    for handle in handles:
        handle.remove()
    return raw


def no_hooks_left(model):
    return all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize("pooling, reduce", [("max", np.max), ("mean", np.mean)])
def test_collect_equals_a_hand_written_hook(unet, inputs, pooling, reduce):
    raw = hand_hooks(unet, LAYERS, inputs)
    got = collect(unet, LAYERS, lambda model: forward(model, inputs), pooling=pooling, calls=-1)
    for name in LAYERS:
        expected = reduce(raw[name][-1], axis=(2, 3))
        assert got[name].shape == (5, raw[name][-1].shape[1]) and got[name].dtype == np.float64
        np.testing.assert_allclose(got[name], expected, rtol=FLOAT32, atol=FLOAT32 * np.abs(expected).max())
    assert no_hooks_left(unet)


def test_repeated_calls_are_stacked_in_call_order(unet, inputs):
    name = "up_blocks.0.resnets.0"
    first, second = inputs, (inputs[0] * 0.5, torch.tensor(500))
    raw = [hand_hooks(unet, [name], batch)[name][0] for batch in (first, second)]
    got = collect(unet, name, lambda model: (forward(model, first), forward(model, second)))[name]
    np.testing.assert_array_equal(got, np.concatenate([r.max(axis=(2, 3)) for r in raw]))
    last = collect(unet, name, lambda model: (forward(model, first), forward(model, second)), calls=-1)[name]
    np.testing.assert_array_equal(last, raw[1].max(axis=(2, 3)))


def test_calls_of_different_widths_need_a_choice(unet, inputs):
    # ResnetBlock2D.nonlinearity acts on features (C = 8) and on the time embedding (32 here).
    with pytest.raises(ValueError, match="calls=k"):
        collect(unet, "up_blocks.1.resnets.0.nonlinearity", lambda model: forward(model, inputs))
    assert no_hooks_left(unet)


def test_tuple_outputs_contribute_element_zero(inputs):
    class Pair(torch.nn.Module):
        def forward(self, x):
            return x * 2.0, "ignored"

    model = torch.nn.Sequential(Pair())
    got = collect(model, "0", lambda m: m(inputs[0]), pooling="mean")["0"]
    np.testing.assert_allclose(got, 2.0 * inputs[0].double().numpy().mean(axis=(2, 3)), rtol=FLOAT32, atol=FLOAT32)


def test_steer_with_zero_strength_is_bit_identical(unet, inputs):
    before = forward(unet, inputs)
    vectors = {name: np.ones(16) for name in ("up_blocks.0.resnets.0", "up_blocks.0.resnets.1")}
    with steer(unet, vectors, 0.0):
        during = forward(unet, inputs)
    assert torch.equal(before, during)
    assert torch.equal(before, forward(unet, inputs)) and no_hooks_left(unet)


def test_steer_equals_a_hand_patched_forward(unet, inputs):
    name, strength = "up_blocks.0.resnets.1", 0.7
    vector = np.random.default_rng(3).normal(size=16)
    before = forward(unet, inputs)
    with steer(unet, {name: vector}, strength):
        steered = forward(unet, inputs)
    block = unet.get_submodule(name)
    original = block.forward
    shift = (strength * torch.tensor(vector)).to(torch.float32).reshape(1, -1, 1, 1)
    block.forward = lambda *args, **kwargs: original(*args, **kwargs) + shift
    try:
        patched = forward(unet, inputs)
    finally:
        del block.forward                       # back to the class's forward
    assert not torch.equal(steered, before)
    # Same float32 operations in the same order, except strength·v rounded once in float32.
    torch.testing.assert_close(steered, patched, rtol=FLOAT32, atol=FLOAT32)
    assert torch.equal(forward(unet, inputs), before) and no_hooks_left(unet)


def test_steer_broadcasts_over_batch_and_space():
    model = torch.nn.Sequential(torch.nn.Identity())
    x = torch.zeros(3, 2, 4, 5, dtype=torch.float64)
    with steer(model, {"0": [1.0, -2.0]}, 0.5):
        out = model(x)
    assert torch.equal(out[:, 0], torch.full((3, 4, 5), 0.5, dtype=torch.float64))
    assert torch.equal(out[:, 1], torch.full((3, 4, 5), -1.0, dtype=torch.float64))


def test_steer_only_in_chosen_steps(unet, inputs):
    name, vector, window = "up_blocks.1.resnets.0", np.ones(8), denoising_window(6, count=3, skip_final=1)
    plain = [forward(unet, (inputs[0], torch.tensor(t))) for t in range(6)]
    with steer(unet, {name: vector}, 1.0, steps=window) as record:
        steered = [forward(unet, (inputs[0], torch.tensor(t))) for t in range(6)]
    assert list(window) == [3, 4] and record.steered == [3, 4] and record.calls == 6
    for step in range(6):
        assert torch.equal(plain[step], steered[step]) == (step not in window)
    assert no_hooks_left(unet)


def test_hooks_are_removed_after_errors(unet, inputs):
    before = forward(unet, inputs)

    def failing(model):
        forward(model, inputs)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        collect(unet, LAYERS, failing, calls=-1)
    assert no_hooks_left(unet)
    with pytest.raises(RuntimeError, match="boom"):
        with steer(unet, {"up_blocks.0.resnets.0": np.ones(16)}, 3.0):
            failing(unet)
    assert no_hooks_left(unet)
    with pytest.raises(ValueError, match="length 5"):            # wrong width, raised in the hook
        with steer(unet, {"up_blocks.0.resnets.0": np.ones(5)}, 1.0):
            forward(unet, inputs)
    assert no_hooks_left(unet) and torch.equal(forward(unet, inputs), before)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: collect(m, ["no.such.layer"], lambda mm: None), "no.such.layer"),
    (lambda m, x: collect(m, [], lambda mm: None), "layer_names"),
    (lambda m, x: collect(m, ["conv_in", "conv_in"], lambda mm: None), "repeat"),
    (lambda m, x: collect(m, ["conv_in"], lambda mm: None), "not called"),
    (lambda m, x: collect(m, ["conv_in"], lambda mm: forward(mm, x), pooling="sum"), "pooling"),
    (lambda m, x: collect(m, ["conv_in"], lambda mm: forward(mm, x), calls=3), "out of range"),
    (lambda m, x: collect(m, ["conv_in"], lambda mm: forward(mm, x), calls="last"), "calls"),
    (lambda m, x: steer(m, {"conv_in": np.ones((2, 2))}, 1.0).__enter__(), "1-D"),
    (lambda m, x: steer(m, {"conv_in": np.ones(8)}, float("nan")).__enter__(), "strength"),
    (lambda m, x: steer(m, {"conv_in": np.ones(8)}, 1.0, steps=[-1]).__enter__(), "steps"),
    (lambda m, x: steer(m, {}, 1.0).__enter__(), "vectors"),
])
def test_bad_input_is_named(unet, inputs, call, message):
    with pytest.raises(ValueError, match=message):
        call(unet, inputs)
    assert no_hooks_left(unet)


def test_collect_needs_a_module(inputs):
    with pytest.raises(TypeError, match="model"):
        collect(lambda x: x, ["a"], lambda m: None)


def test_import_without_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numerics.hooks as h\n"
            "try:\n    h.collect(None, ['a'], print)\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "balanced-rep[torch]" in out
