"""numerics.pipelines end to end on tiny randomly initialised pipelines built from configs,
saved with save_pretrained and reloaded from disk (never a download)."""
from __future__ import annotations

import json
import os
import string

import numpy as np
import pytest

from optional_deps import require

torch = require("torch")
diffusers = require("diffusers")
transformers = require("transformers")

from numerics import pipelines  # noqa: E402
from numerics.hooks import torch_threads  # noqa: E402

# float32 networks: Std of ≤ 16 pooled float32 values recomputed in float64 from the same
# activations agrees to float32 rounding (2⁻²⁴ ≈ 6e-8 relative per operation, ×16 terms).
FLOAT32 = 1e-6
# Different batch sizes may use different float32 convolution kernels: the UNet's ~30 layers
# each add O(2⁻²⁴) relative error, so agreement to 1e-4 relative is expected, not bit equality.
KERNELS = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _tokenizer(folder):
    """A CLIP tokenizer over letters and digits, written to files and loaded like a saved one."""
    chars = list(string.ascii_lowercase + string.digits)
    vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars]
                                                + ["<|startoftext|>", "<|endoftext|>"])}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w") as stream:
        json.dump(vocab, stream)
    with open(os.path.join(folder, "merges.txt"), "w") as stream:
        stream.write("#version: 0.2\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as stream:
        json.dump({"model_max_length": 16}, stream)
    return transformers.CLIPTokenizer.from_pretrained(folder, local_files_only=True), vocab


@pytest.fixture(scope="module")
def sd_path(tmp_path_factory):
    """A Stable-Diffusion-shaped pipeline: up_blocks.0 without attention and 3 resnets per up
    block, as in SD 1.4, so the preset layer names exist."""
    root = tmp_path_factory.mktemp("tiny_sd")
    tokenizer, vocab = _tokenizer(str(root / "tokenizer_files"))
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=2)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                                  norm_num_groups=4, sample_size=16)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=16, bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"]))
    scheduler = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                             scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    path = str(root / "pipeline")
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sd(sd_path):
    return pipelines.load_pipeline(sd_path)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(5, 16, 16, 3))


def hand_written_algorithm_1(pipe, images, t, layers):
    """Reference: encode, scale, noise, empty prompt, one UNet call, hooks keeping the last
    output of each layer, spatial max, population Std in float64."""
    x = torch.tensor(images.transpose(0, 3, 1, 2) * 2.0 - 1.0, dtype=torch.float32)
    kept, handles = {}, []
    for name in layers:
        def keep(module, args, output, name=name):
            kept[name] = output.detach()
        handles.append(pipe.unet.get_submodule(name).register_forward_hook(keep))
    with torch.no_grad():
        distribution = pipe.vae.encode(x).latent_dist
        eps = torch.stack([torch.randn(distribution.mean.shape[1:], generator=torch.Generator().manual_seed(i))
                           for i in range(len(x))])
        latents = (distribution.mean + distribution.std * eps) * pipe.vae.config.scaling_factor
        noise = torch.stack([torch.randn(latents.shape[1:],
                                         generator=torch.Generator().manual_seed(i + pipelines.NOISE_SEED_OFFSET))
                             for i in range(len(x))])
        noisy = pipe.scheduler.add_noise(latents, noise, torch.full((len(x),), t))
        ids = pipe.tokenizer("", padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             return_tensors="pt").input_ids
        states = pipe.text_encoder(ids)[0].expand(len(x), -1, -1)
        pipe.unet(noisy, torch.full((len(x),), t), encoder_hidden_states=states)
    for handle in handles:
        handle.remove()
    return {name: np.std(kept[name].double().amax(dim=(2, 3)).numpy(), axis=1) for name in layers}


def test_family_and_presets(sd):
    assert type(sd).__name__ == "StableDiffusionPipeline" and pipelines.family(sd) == "stable-diffusion"
    assert pipelines.preset_layers(sd, "detection") == [
        "up_blocks.0.resnets.0.nonlinearity", "up_blocks.0.resnets.1.nonlinearity",
        "up_blocks.0.resnets.2.nonlinearity", "up_blocks.1.resnets.0.nonlinearity"]
    assert pipelines.preset_layers(sd, "steering") == [
        "up_blocks.0.resnets.0", "up_blocks.0.resnets.1", "up_blocks.0.resnets.2",
        "up_blocks.1.resnets.0", "up_blocks.1.resnets.1"]


def test_detection_scores_equal_a_hand_written_algorithm_1(sd, images):
    layers = pipelines.preset_layers(sd)
    scores = pipelines.detection_scores(sd, images, t=50, batch_size=5)
    expected = hand_written_algorithm_1(sd, images, 50, layers)
    for name in layers:
        assert scores[name].shape == (5,) and np.all(scores[name] > 0)
        np.testing.assert_allclose(scores[name], expected[name], rtol=FLOAT32)
    assert scores[pipelines.ALL_LAYERS].shape == (5,)


def test_scores_do_not_depend_on_batching_and_repeat_exactly(sd, images):
    one = pipelines.detection_scores(sd, images, t=50, batch_size=1)
    all_at_once = pipelines.detection_scores(sd, images, t=50, batch_size=5)
    again = pipelines.detection_scores(sd, images, t=50, batch_size=1)
    for name in one:
        np.testing.assert_allclose(one[name], all_at_once[name], rtol=KERNELS)
        np.testing.assert_array_equal(one[name], again[name])


def test_command_line_scores_folders_and_writes_roc(sd, sd_path, images, tmp_path, capsys):
    from PIL import Image

    folders = {}
    for group, part in (("memorised", images[:2]), ("generalised", images[2:])):
        folders[group] = tmp_path / group
        folders[group].mkdir()
        for i, image in enumerate(part):
            Image.fromarray(np.round(255 * image).astype(np.uint8)).save(folders[group] / f"{i}.png")
    out = tmp_path / "scores.json"
    code = pipelines.main(["detect", "--model", sd_path, "--memorised", str(folders["memorised"]),
                           "--generalised", str(folders["generalised"]), "--t", "50", "--json", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[0].startswith("group,image,up_blocks.0.resnets.0.nonlinearity") and len(lines) == 6
    record = json.loads(out.read_text())
    assert record["roc"][pipelines.ALL_LAYERS]["n_memorised"] == 2
    assert record["roc"][pipelines.ALL_LAYERS]["n_generalised"] == 3
    # The CLI reads PNGs (8-bit): its scores are those of the 8-bit images passed as files.
    files = sorted(str(folders["memorised"] / name) for name in os.listdir(folders["memorised"]))
    direct = pipelines.detection_scores(sd, files, t=50)
    np.testing.assert_array_equal(record["results"]["memorised"]["scores"][pipelines.ALL_LAYERS],
                                  direct[pipelines.ALL_LAYERS])


def test_steering_through_the_pipeline(sd, images):
    vectors = pipelines.steering_vectors(sd, images, t=10, prompt="a photo")
    assert {name: v.shape for name, v in vectors.items()} == {
        "up_blocks.0.resnets.0": (16,), "up_blocks.0.resnets.1": (16,), "up_blocks.0.resnets.2": (16,),
        "up_blocks.1.resnets.0": (8,), "up_blocks.1.resnets.1": (8,)}
    plain = sd(prompt="a photo", num_inference_steps=6, guidance_scale=7.5, output_type="np",
               generator=torch.Generator().manual_seed(3)).images[0]
    zero, strong = pipelines.steered_images(sd, vectors, [0.0, 5.0], prompt="a photo", num_inference_steps=6,
                                            seed=3, window=(3, 1))
    assert zero.shape == (16, 16, 3)
    np.testing.assert_array_equal(zero, plain)
    assert np.max(np.abs(strong - plain)) > 0


def test_unconditional_unet_pipeline(tmp_path):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
                                 up_block_types=("UpBlock2D",) * 2, norm_num_groups=4, add_attention=False)
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(str(tmp_path / "ddpm"))
    pipe = pipelines.load_pipeline(str(tmp_path / "ddpm"))
    assert pipelines.family(pipe) == "unet2d"
    grey = np.random.default_rng(1).uniform(size=(4, 8, 8, 1))
    scores = pipelines.detection_scores(pipe, grey, t=50)
    assert set(scores) == set(pipelines.preset_layers(pipe)) | {pipelines.ALL_LAYERS}
    assert all(value.shape == (4,) and np.all(np.isfinite(value)) for value in scores.values())


def test_nothing_is_downloaded(tmp_path):
    with pytest.raises(ValueError, match="nothing is downloaded"):
        pipelines.load_pipeline("CompVis/stable-diffusion-v1-4")
    with pytest.raises(ValueError, match="model_index.json"):
        pipelines.load_pipeline(str(tmp_path))


@pytest.mark.parametrize("kwargs, message", [(dict(t=1000), "t must be < 1000"), (dict(t=-1), "t"),
                                             (dict(batch_size=0), "batch_size"), (dict(kind="max"), "kind")])
def test_bad_arguments_are_named(sd, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipelines.detection_scores(sd, images, **kwargs)


def test_bad_images_are_named(sd):
    with pytest.raises(ValueError, match="images"):
        pipelines.detection_scores(sd, np.full((2, 16, 16, 3), 2.0))
    with pytest.raises(ValueError, match="images"):
        pipelines.detection_scores(sd, "/no/such/folder")
