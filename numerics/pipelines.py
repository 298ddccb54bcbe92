"""Pretrained diffusers pipelines from a local folder: Algorithm 1 detection, eq. (11) steering.

The paper's Table 1 scores Stable Diffusion 1.4 (and DiT, EDM) images by the Std of an
intermediate UNet representation. This module carries that code path for any diffusers
pipeline saved on disk, never downloading anything (``local_files_only=True``):

1. `load_pipeline` — ``DiffusionPipeline.from_pretrained(folder, local_files_only=True)``,
   on a chosen device and dtype;
2. `detection_scores` — images → VAE latents (× the VAE's scaling factor) → noise added by the
   pipeline's scheduler at timestep ``t`` → one UNet call with the empty prompt → spatial max
   of the preset layers' activations (`numerics.hooks.collect`) → Std per layer
   (`numerics.detection.spikiness`), as in the authors' detection code;
3. `steering_vectors` / `steered_images` — mean spatial-mean representation of reference
   images, added with strength ``a`` in the last 20 denoising steps except the final 2
   (`numerics.hooks.steer`).

Preset layers per family (`PRESETS`): ``"stable-diffusion"`` (UNet2DConditionModel + VAE +
CLIP text encoder) uses the authors' SD 1.4 layers; ``"unet2d"`` (an unconditional
UNet2DModel pipeline, e.g. ``DDPMPipeline``, such as the digit model of
`numerics.unet_ddpm`) maps them to that UNet. Other families (DiT, EDM) work through
explicit ``layers=``.

Command line (scores as CSV on stdout, an optional JSON with ROC summaries)::

    python -m numerics.pipelines detect --model PATH --images DIR --t 50 [--device cuda]
    python -m numerics.pipelines detect --model PATH --memorised DIR1 --generalised DIR2

>>> PRESETS["stable-diffusion"]["detection"][-1]
'up_blocks.1.resnets.0.nonlinearity'
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from numerics.detection import roc_summary, spikiness
from numerics.hooks import collect, denoising_window, require_torch, steer
from numerics.validation import positive_int

__all__ = ["PRESETS", "ALL_LAYERS", "load_pipeline", "family", "preset_layers", "load_images",
           "encode_latents", "empty_prompt", "detection_scores", "steering_vectors", "steered_images", "main"]

# These examples build a tiny pipeline: they need the optional extra [torch].
__doctest_requires__ = {("load_pipeline", "family", "preset_layers", "encode_latents", "empty_prompt", "detection_scores",
                         "steering_vectors", "steered_images", "main"): ["torch", "diffusers", "transformers"]}

ALL_LAYERS = "all layers"
# Image i uses seed + i for its VAE draw and seed + i + NOISE_SEED_OFFSET for the added noise.
NOISE_SEED_OFFSET = 1_000_003
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

PRESETS = {
    "stable-diffusion": dict(
        detection=[f"up_blocks.0.resnets.{j}.nonlinearity" for j in range(3)] + ["up_blocks.1.resnets.0.nonlinearity"],
        steering=[f"up_blocks.0.resnets.{j}" for j in range(3)] + [f"up_blocks.1.resnets.{j}" for j in range(2)]),
}


def load_pipeline(path: str, *, device: str = "cpu", dtype=None):
    """A diffusers pipeline from the local folder ``path`` (no download), moved to ``device``.

    ``dtype`` (e.g. ``torch.float16`` on a GPU) is passed as ``torch_dtype``.

    >>> import diffusers, tempfile
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> folder = tempfile.mkdtemp()                             # a tiny untrained pipeline saved to disk
    >>> diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler()).save_pretrained(folder)
    >>> type(load_pipeline(folder)).__name__
    'DDPMPipeline'
    """
    require_torch()
    from diffusers import DiffusionPipeline

    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "model_index.json")):
        raise ValueError(f"path must be a local folder holding a saved pipeline (model_index.json); "
                         f"got {path!r} — nothing is downloaded")
    kwargs = {} if dtype is None else dict(torch_dtype=dtype)
    pipe = DiffusionPipeline.from_pretrained(path, local_files_only=True, **kwargs).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def family(pipe) -> str:
    """``"stable-diffusion"`` (conditional UNet, VAE, text encoder) or ``"unet2d"`` (unconditional).

    >>> import diffusers
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> family(diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler()))
    'unet2d'
    """
    from diffusers import UNet2DConditionModel, UNet2DModel

    unet = getattr(pipe, "unet", None)
    if isinstance(unet, UNet2DConditionModel) and getattr(pipe, "vae", None) is not None \
            and getattr(pipe, "text_encoder", None) is not None:
        return "stable-diffusion"
    if isinstance(unet, UNet2DModel):
        return "unet2d"
    raise ValueError(f"pipeline {type(pipe).__name__} is not a supported family (a UNet2DConditionModel "
                     "with VAE and text encoder, or a UNet2DModel); pass layers= and call collect directly")


def preset_layers(pipe, purpose: str = "detection") -> list[str]:
    """The preset layer names of the pipeline's family for ``purpose`` (detection / steering).

    >>> import diffusers
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> pipe = diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler())
    >>> preset_layers(pipe, "steering")
    ['up_blocks.0.resnets.0', 'up_blocks.0.resnets.1', 'up_blocks.1.resnets.0', 'up_blocks.1.resnets.1']
    """
    if purpose not in ("detection", "steering"):
        raise ValueError(f"purpose must be 'detection' or 'steering'; got {purpose!r}")
    kind = family(pipe)
    if kind == "stable-diffusion":
        return list(PRESETS[kind][purpose])
    from numerics.unet_detection import detection_layers
    from numerics.unet_steering import steering_layers

    return (detection_layers if purpose == "detection" else steering_layers)(pipe.unet)


# ----------------------------------------------------------------------------- inputs


def _image_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise ValueError(f"images must be a folder of image files; got {folder!r}")
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder!r}")
    return files


def load_images(images, size: int, channels: int = 3) -> np.ndarray:
    """Images → float64 batch ``(m, channels, size, size)`` in [−1, 1].

    ``images`` is a folder, a list of file paths or PIL images, or a float array
    ``(m, H, W, channels)`` in [0, 1]. Files are read with PIL, converted to RGB (or greyscale
    for one channel) and resized with PIL's bicubic filter; arrays are used as they are when
    ``H = W = size``, else resized with ``skimage.transform.resize`` (bicubic, anti-aliased).

    >>> batch = load_images(np.ones((2, 4, 4, 3)), size=8)
    >>> batch.shape, float(batch.min()), float(batch.max())
    ((2, 3, 8, 8), 1.0, 1.0)
    """
    from PIL import Image

    size, channels = positive_int("size", size), positive_int("channels", channels)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels}")
    if isinstance(images, str):
        images = _image_files(images)
    if isinstance(images, np.ndarray):
        return _array_images(images, size, channels)
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for image in images:
        image = Image.open(image) if isinstance(image, str) else image
        image = image.convert(mode).resize((size, size), Image.BICUBIC)
        arrays.append(np.asarray(image, dtype=np.float64).reshape(size, size, channels) / 127.5 - 1.0)
    if not arrays:
        raise ValueError("images must hold at least one image")
    return np.stack(arrays).transpose(0, 3, 1, 2)


def _array_images(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    from skimage.transform import resize

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] != channels \
            or not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must be a non-empty array (m, H, W, {channels}) with values in [0, 1]; "
                         f"got shape {images.shape}")
    if images.shape[1:3] != (size, size):
        images = np.stack([resize(image, (size, size, channels), order=3, anti_aliasing=True, mode="edge")
                           for image in images]).clip(0.0, 1.0)
    return images.transpose(0, 3, 1, 2) * 2.0 - 1.0


def _image_size(pipe) -> int:
    """Side of the images the pipeline works on: the UNet's sample size, × the VAE's factor."""
    size = pipe.unet.config.sample_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    return size * int(pipe.vae_scale_factor) if getattr(pipe, "vae", None) is not None else size


def _noise(shape, seeds, torch):
    """One standard normal draw per image from its own seed (independent of batching and device)."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def encode_latents(pipe, batch: np.ndarray, seeds):
    """VAE latents × ``scaling_factor`` (a draw from the latent distribution, one seed per image,
    as the authors' ``latent_dist.sample()``); the images themselves without a VAE.

    >>> import diffusers
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> pipe = diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler())
    >>> latents = encode_latents(pipe, np.zeros((2, 1, 8, 8)), seeds=[0, 1])   # no VAE: the images themselves
    >>> tuple(latents.shape), str(latents.dtype)
    ((2, 1, 8, 8), 'torch.float32')
    """
    torch = require_torch()
    unet = pipe.unet
    x = torch.tensor(batch, dtype=unet.dtype, device=unet.device)
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return x
    distribution = vae.encode(x.to(vae.dtype)).latent_dist
    eps = _noise(distribution.mean.shape[1:], seeds, torch).to(device=vae.device, dtype=vae.dtype)
    return ((distribution.mean + distribution.std * eps) * vae.config.scaling_factor).to(unet.dtype)


def empty_prompt(pipe, batch: int, prompt: str = ""):
    """Text-encoder states of ``prompt`` (the empty prompt by default) for ``batch`` images.

    >>> import tokenizers, torch, transformers, types          # a tiny text encoder standing in for CLIP's
    >>> words = tokenizers.Tokenizer(tokenizers.models.WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>"))
    >>> tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", model_max_length=4)
    >>> encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(
    ...     vocab_size=2, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...     max_position_embeddings=4, bos_token_id=0, eos_token_id=1, pad_token_id=0))
    >>> unet = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
    >>> empty_prompt(types.SimpleNamespace(tokenizer=tokenizer, text_encoder=encoder, unet=unet), batch=3).shape
    torch.Size([3, 4, 8])
    """
    torch = require_torch()
    tokens = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                            truncation=True, return_tensors="pt")
    with torch.no_grad():
        states = pipe.text_encoder(tokens.input_ids.to(pipe.text_encoder.device))[0]
    return states.to(device=pipe.unet.device, dtype=pipe.unet.dtype).expand(batch, -1, -1)


def _representations(pipe, batch: np.ndarray, seeds, t: int, layers, pooling: str, prompt: str = "") -> dict:
    """Pooled activations ``{layer: (m, C)}`` of one UNet call on the noised latents of ``batch``."""
    torch = require_torch()
    with torch.no_grad():
        latents = encode_latents(pipe, batch, seeds)
        noise = _noise(latents.shape[1:], [s + NOISE_SEED_OFFSET for s in seeds], torch).to(latents)
        timesteps = torch.full((latents.shape[0],), t, dtype=torch.long, device=latents.device)
        noisy = pipe.scheduler.add_noise(latents, noise, timesteps)
        kwargs = {}
        if family(pipe) == "stable-diffusion":
            kwargs["encoder_hidden_states"] = empty_prompt(pipe, latents.shape[0], prompt)
        return collect(pipe.unet, layers, lambda unet: unet(noisy, timesteps, **kwargs), pooling=pooling, calls=-1)


def _checked_t(pipe, t) -> int:
    t = positive_int("t", t, minimum=0)
    if t >= pipe.scheduler.config.num_train_timesteps:
        raise ValueError(f"t must be < {pipe.scheduler.config.num_train_timesteps}; got {t}")
    return t


def detection_scores(pipe, images, *, t: int = 50, layers=None, kind: str = "std", seed: int = 0,
                     batch_size: int = 8) -> dict:
    """Algorithm 1: the spikiness of each image's representation, ``{layer: (m,)}`` float64.

    ``images`` as in `load_images` (resized to the pipeline's resolution). Each image gets
    its own seeds for the VAE draw and the noise (`NOISE_SEED_OFFSET`), so scores do not depend
    on ``batch_size``.
    A diffusers ``nonlinearity`` module runs three times per resnet; its last call (the
    features before the block's second convolution) is read, as the authors' hooks keep it.
    Besides one entry per layer, ``ALL_LAYERS`` scores the concatenation of all of them.

    >>> import diffusers
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> pipe = diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler())
    >>> scores = detection_scores(pipe, np.random.default_rng(0).uniform(size=(3, 8, 8, 1)), t=50)   # 3 grey 8 × 8
    >>> sorted(scores) == sorted(preset_layers(pipe) + [ALL_LAYERS]), scores[ALL_LAYERS].shape
    (True, (3,))
    """
    t = _checked_t(pipe, t)
    layers = list(layers) if layers is not None else preset_layers(pipe, "detection")
    channels = pipe.unet.config.in_channels if getattr(pipe, "vae", None) is None else 3
    batch = load_images(images, _image_size(pipe), channels)
    size = positive_int("batch_size", batch_size)
    pooled = {name: [] for name in layers}
    for start in range(0, batch.shape[0], size):
        seeds = [seed + i for i in range(start, min(start + size, batch.shape[0]))]
        reps = _representations(pipe, batch[start:start + size], seeds, t, layers, "max")
        for name in layers:
            pooled[name].append(reps[name])
    pooled = {name: np.concatenate(parts) for name, parts in pooled.items()}
    scores = {name: spikiness(value, kind, samples="rows") for name, value in pooled.items()}
    scores[ALL_LAYERS] = spikiness(np.concatenate(list(pooled.values()), axis=1), kind, samples="rows")
    return scores


def steering_vectors(pipe, images, *, t: int = 10, prompt: str = "", layers=None, seed: int = 0) -> dict:
    """Eq. (11)'s ``v``: the mean over reference images of each steering layer's spatial-mean
    output at timestep ``t`` (the authors use t = 10 and the reference prompt).

    >>> import diffusers
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> pipe = diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler())
    >>> vectors = steering_vectors(pipe, np.random.default_rng(0).uniform(size=(3, 8, 8, 1)), t=10)
    >>> {name: v.shape for name, v in vectors.items()}          # one length-C vector per steering layer
    {'up_blocks.0.resnets.0': (16,), 'up_blocks.0.resnets.1': (16,), 'up_blocks.1.resnets.0': (8,), 'up_blocks.1.resnets.1': (8,)}
    """
    t = _checked_t(pipe, t)
    layers = list(layers) if layers is not None else preset_layers(pipe, "steering")
    channels = pipe.unet.config.in_channels if getattr(pipe, "vae", None) is None else 3
    batch = load_images(images, _image_size(pipe), channels)
    reps = _representations(pipe, batch, [seed + i for i in range(batch.shape[0])], t, layers, "mean", prompt)
    return {name: value.mean(axis=0) for name, value in reps.items()}


def steered_images(pipe, vectors: dict, strengths, *, prompt: str = "", num_inference_steps: int = 40,
                   guidance_scale: float = 7.5, seed: int = 0, window=(20, 2)) -> list[np.ndarray]:
    """Generate with ``h + a v`` at each strength ``a`` (same seed): a list of ``(H, W, 3)`` arrays.

    Steering acts in `denoising_window` ``(num_inference_steps, *window)`` — the last 20 steps
    except the final 2 by default, as the authors do (DDIM 40 steps, guidance 7.5 for SD).

    >>> import diffusers, torch
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> pipe = diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler())
    >>> zero, strong = steered_images(pipe, {"up_blocks.0.resnets.0": np.ones(16)}, [0.0, 5.0], num_inference_steps=4, window=(2, 1))
    >>> plain = pipe(generator=torch.Generator().manual_seed(0), num_inference_steps=4, output_type="np").images[0]
    >>> zero.shape, np.array_equal(zero, plain), bool(np.abs(strong - plain).max() > 0)   # a = 0 changes nothing
    ((8, 8, 1), True, True)
    """
    torch = require_torch()
    steps = positive_int("num_inference_steps", num_inference_steps)
    chosen = denoising_window(steps, *window)
    kwargs = dict(num_inference_steps=steps, output_type="np")
    if family(pipe) == "stable-diffusion":
        kwargs.update(prompt=prompt, guidance_scale=guidance_scale)
    images = []
    for a in strengths:
        with steer(pipe.unet, vectors, a, steps=chosen):
            out = pipe(generator=torch.Generator().manual_seed(seed), **kwargs).images
        images.append(np.asarray(out[0], dtype=np.float64))
    return images


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m numerics.pipelines",
                                     description="Memorisation detection (Algorithm 1) with a local diffusers pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="score images by the Std of UNet representations")
    detect.add_argument("--model", required=True, help="folder of a saved pipeline (no download)")
    detect.add_argument("--images", help="folder of images to score")
    detect.add_argument("--memorised", help="folder of images known to be memorised (adds a ROC summary)")
    detect.add_argument("--generalised", help="folder of images known to be generalised")
    detect.add_argument("--t", type=int, default=50, help="timestep of the added noise (paper: 50)")
    detect.add_argument("--layers", nargs="+", help="layer names (default: the family's preset)")
    detect.add_argument("--kind", default="std", choices=["std", "l4/l2"])
    detect.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    detect.add_argument("--batch-size", type=int, default=8)
    detect.add_argument("--seed", type=int, default=0)
    detect.add_argument("--json", help="also write scores and ROC summaries to this JSON file")
    return parser


def main(argv=None) -> int:
    """Command-line entry: ``detect`` prints one CSV row of scores per image.

    >>> import diffusers, tempfile
    >>> from PIL import Image
    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> model, images = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> diffusers.DDPMPipeline(unet=build_unet(DDPMConfig.fast()), scheduler=diffusers.DDPMScheduler()).save_pretrained(model)
    >>> for i in range(2):                                      # two 8 × 8 grey images
    ...     Image.fromarray(np.full((8, 8), 100 * i, np.uint8)).save(os.path.join(images, f"{i}.png"))
    >>> main(["detect", "--model", model, "--images", images])  # one CSV row of scores per image
    group,image,up_blocks.0.resnets.0.nonlinearity,up_blocks.0.resnets.1.nonlinearity,up_blocks.1.resnets.0.nonlinearity,all layers
    images,.../0.png,...
    images,.../1.png,...
    0
    """
    args = _parser().parse_args(argv)
    groups = {name: folder for name, folder in
              (("images", args.images), ("memorised", args.memorised), ("generalised", args.generalised)) if folder}
    if not groups or (("memorised" in groups) != ("generalised" in groups)):
        raise SystemExit("give --images DIR, or both --memorised DIR and --generalised DIR")
    pipe = load_pipeline(args.model, device=args.device)
    began, results = time.perf_counter(), {}
    for group, folder in groups.items():
        files = _image_files(folder)
        scores = detection_scores(pipe, files, t=args.t, layers=args.layers, kind=args.kind, seed=args.seed,
                                  batch_size=args.batch_size)
        results[group] = dict(files=files, scores={name: value.tolist() for name, value in scores.items()})
    seconds = time.perf_counter() - began
    names = list(next(iter(results.values()))["scores"])
    print(",".join(["group", "image"] + names))
    for group, record in results.items():
        for i, path in enumerate(record["files"]):
            print(",".join([group, path] + [f"{record['scores'][name][i]:.6g}" for name in names]))
    summary = {}
    if "memorised" in results:
        summary = {name: roc_summary(results["memorised"]["scores"][name], results["generalised"]["scores"][name],
                                     seconds=seconds).as_dict() for name in names}
        for name, value in summary.items():
            print(f"# {name}: AUROC {value['auroc']:.4f}, TPR@1%FPR {value['tpr_at_1pct_fpr']:.4f}, "
                  f"{value['seconds_per_sample']:.4f} s/sample", file=sys.stderr)
    if args.json:
        from numerics.checkpoint import atomic_write_text, jsonable

        atomic_write_text(args.json, json.dumps(jsonable(dict(parameters=vars(args), results=results, roc=summary,
                                                              seconds=seconds)), indent=1))
    return 0


if __name__ == "__main__":                                   # pragma: no cover
    sys.exit(main())
