"""Synthetic identity data: new images of each face in varied scenes (Stable Diffusion 1.5 + IP-Adapter).

The personalization papers' training-data recipe: for every identity, the face image goes to an
IP-Adapter (it keeps the identity under a new prompt) and a scene prompt decides the rest.
:func:`synthesize` writes the result in the release's recognition-folder format (Yo'LLaVA/MyVLM
style), readable by
:func:`pipeline.datasets.release.load_identity_folders`::

    OUT/<identity>/ref_img.png          the given face (decoded, EXIF-rotated, saved as PNG)
    OUT/<identity>/query_img_000.png    generated images, one per (identity, index)
    OUT/<identity>/query_img_001.png    ...
    OUT/synth.json                      manifest: model ids, settings, prompt and seed of every image

Models (``SynthConfig`` defaults), never downloaded here (workers are offline):

* base: ``stable-diffusion-v1-5/stable-diffusion-v1-5`` (SD 1.5, 512 px);
* IP-Adapter: ``h94/IP-Adapter``, ``models/ip-adapter-plus-face_sd15.safetensors`` with its
  ViT-H image encoder ``models/image_encoder``. "plus-face" is IP-Adapter Plus (a Resampler
  turning the CLIP patch features into 16 tokens) trained with cropped faces as the condition,
  i.e. for keeping a face's identity, unlike the generic ``ip-adapter_sd15``.
  ``ip-adapter-full-face_sd15.safetensors`` (all 257 CLIP tokens through an MLP) is the other
  face variant; which one keeps identities better on a given face set is worth a quick look at
  both. Both want a CROPPED FACE as input (like CelebA-HQ's aligned faces), not a full photo.
  Either file works with the same code (set ``ip_adapter_weight_name``).

Determinism: image ``i`` of identity ``name`` uses seed ``image_seed(config.seed, name, i)`` (a
hash, independent of the other identities, of the order and of batch size) through a CPU
``torch.Generator``; its prompt is ``prompts[(prompt_offset(name, n) + i) % n]`` (the list is
cycled, each identity starting at its own hash-chosen place, so that small ``images_per_identity``
still cover every prompt across identities). Same config, same face => same image bytes on the
same hardware, dtype and library versions (CPU: exactly; CUDA: up to its kernels' determinism).

Resumable: existing ``query_img_XXX.png`` files are kept and skipped (their manifest records are
kept too); files are written atomically, the manifest after every identity. If a face file changed
(sha256 differs from the manifest), that identity's images are regenerated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import MissingWeights
from pipeline.synth.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPTS

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_IP_ADAPTER_REPO = "h94/IP-Adapter"
DEFAULT_IP_ADAPTER_SUBFOLDER = "models"
DEFAULT_IP_ADAPTER_WEIGHT = "ip-adapter-plus-face_sd15.safetensors"
IMAGE_ENCODER_FOLDER = "image_encoder"

MANIFEST_NAME = "synth.json"
MANIFEST_FORMAT = "pipeline.synth/1"
REFERENCE_NAME = "ref_img.png"
REFERENCE_STEM = "ref_img"
QUERY_TEMPLATE = "query_img_{:03d}.png"
# Face files accepted as input (decoded by pipeline.photos.decode.decode_photo).
FACE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"})
MAX_FACE_PIXELS = 64_000_000


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides what :func:`synthesize` generates.

    Attributes:
        base_model: SD 1.5-family diffusers checkpoint: hub id (must already be in the local HF
            cache) or a local folder written by ``save_pretrained``.
        ip_adapter_repo / ip_adapter_subfolder / ip_adapter_weight_name: where the IP-Adapter
            weights are (hub id or local folder, as ``pipe.load_ip_adapter`` takes them).
        image_encoder_folder: the CLIP image encoder, relative to ``ip_adapter_subfolder`` (or to
            the repo root when it contains a "/"), as in ``load_ip_adapter``.
        ip_adapter_scale: image-prompt strength (0 = text only; ~0.5-0.8 keeps the face and
            still follows the scene prompt; 1.0 copies the reference photo's look).
        steps / guidance: denoising steps and classifier-free guidance scale.
        size: output width = height in pixels (multiple of 8; SD 1.5 is trained at 512).
        images_per_identity: generated images per identity.
        seed: base seed; per-image seeds are derived from it (:func:`image_seed`).
        prompts / negative_prompt: scene prompts (cycled) and the negative prompt ("" for none).
        device / dtype: "auto" = CUDA + float16 when available, else CPU + float32; or e.g.
            "cuda:1" / "bfloat16".
        safety_checker: keep SD 1.5's NSFW safety checker (flagged images are not written).
        variant: weight-file variant to load (e.g. "fp16" for SD 1.5's half-precision files).
        cache_dir: Hugging Face cache folder when not the default (HF_HOME / HF_HUB_CACHE).
    """

    base_model: str = DEFAULT_BASE_MODEL
    ip_adapter_repo: str = DEFAULT_IP_ADAPTER_REPO
    ip_adapter_subfolder: str = DEFAULT_IP_ADAPTER_SUBFOLDER
    ip_adapter_weight_name: str = DEFAULT_IP_ADAPTER_WEIGHT
    image_encoder_folder: str = IMAGE_ENCODER_FOLDER
    ip_adapter_scale: float = 0.7
    steps: int = 30
    guidance: float = 7.5
    size: int = 512
    images_per_identity: int = 10
    seed: int = 0
    prompts: tuple[str, ...] = DEFAULT_PROMPTS
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    device: str = "auto"
    dtype: str = "auto"
    safety_checker: bool = True
    variant: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(self.prompts))
        problems = []
        if not self.prompts or any(not str(p).strip() for p in self.prompts):
            problems.append("prompts must be a non-empty list of non-empty strings")
        if self.steps < 1:
            problems.append(f"steps must be >= 1 (got {self.steps})")
        if self.images_per_identity < 0:
            problems.append(f"images_per_identity must be >= 0 (got {self.images_per_identity})")
        if self.size < 8 or self.size % 8:
            problems.append(f"size must be a positive multiple of 8 (got {self.size})")
        if self.ip_adapter_scale < 0:
            problems.append(f"ip_adapter_scale must be >= 0 (got {self.ip_adapter_scale})")
        if problems:
            raise ValueError("invalid SynthConfig: " + "; ".join(problems))


@dataclass
class SynthReport:
    """What :func:`synthesize` did.

    ``identities``: identities written to ``out_dir`` (reference + images), sorted.
    ``generated`` / ``skipped``: query images made now / already there (resume).
    ``filtered``: images the safety checker flagged (``name/query_img_XXX.png``), not written; a
    rerun tries them again with the same seed. ``failures``: one line per face that could not be
    used (unreadable image, ambiguous folder), not fatal. ``notes``: warnings (settings changed
    between runs, faces changed, ignored input entries).
    """

    out_dir: Path
    manifest: Path
    identities: list[str] = field(default_factory=list)
    generated: int = 0
    skipped: int = 0
    filtered: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every face was usable and no image was filtered."""
        return not self.failures and not self.filtered

    def summary(self) -> str:
        """One readable line: counts, then failures/filtered counts when non-zero."""
        text = (
            f"{len(self.identities)} identities in {self.out_dir}: {self.generated} images generated, "
            f"{self.skipped} already there"
        )
        if self.filtered:
            text += f", {len(self.filtered)} filtered by the safety checker"
        if self.failures:
            text += f", {len(self.failures)} faces failed"
        return text


@dataclass(frozen=True)
class FaceSource:
    """One input identity: its name (output folder name) and its face image file."""

    name: str
    path: Path


# --------------------------------------------------------------------------------------------
# Seeds, prompts, input discovery


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def image_seed(base_seed: int, identity: str, index: int) -> int:
    """The seed of image ``index`` of ``identity``: a stable 31-bit hash of (base seed, name, index)."""
    return _hash_int(f"{base_seed}\x00{identity}\x00{index}") & 0x7FFFFFFF


def prompt_offset(identity: str, n_prompts: int) -> int:
    """Where ``identity`` starts in the prompt list (stable hash of the name)."""
    return _hash_int(f"prompt\x00{identity}") % n_prompts


def prompt_for(prompts: Sequence[str], identity: str, index: int) -> str:
    """The prompt of image ``index`` of ``identity``: the list cycled from :func:`prompt_offset`."""
    return prompts[(prompt_offset(identity, len(prompts)) + index) % len(prompts)]


def _is_face_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in FACE_SUFFIXES


def discover_faces(faces_dir: Path, exclude: Path | None = None) -> tuple[list[FaceSource], list[str], list[str]]:
    """The identities in ``faces_dir``: ``(sources sorted by name, problems, notes)``.

    Accepted, mixed freely: identity folders ``NAME/ref_img.<ext>`` (or ``NAME/`` holding exactly
    one image), and flat image files ``NAME.<ext>``. A folder with several images and no
    ``ref_img``, several ``ref_img`` files, or no image is a problem (listed, skipped); so is a
    name used twice. Hidden entries and non-image files are skipped (noted). ``exclude`` (the
    output folder, when it lies inside ``faces_dir``) is skipped silently.

    Raises:
        FileNotFoundError: ``faces_dir`` is not a folder.
    """
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise FileNotFoundError(f"faces folder {faces_dir} does not exist or is not a folder")
    exclude_resolved = exclude.resolve() if exclude is not None else None
    found: dict[str, FaceSource] = {}
    problems: list[str] = []
    notes: list[str] = []

    def add(name: str, path: Path) -> None:
        if name in found:
            problems.append(f"{name}: given twice ({found[name].path.name} and {path.name}); kept the first")
        else:
            found[name] = FaceSource(name, path)

    for entry in sorted(faces_dir.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if exclude_resolved is not None and entry.resolve() == exclude_resolved:
            continue
        if entry.is_dir():
            images = sorted((p for p in entry.iterdir() if _is_face_file(p)), key=lambda p: p.name)
            refs = [p for p in images if p.stem.lower() == REFERENCE_STEM]
            if len(refs) == 1:
                add(entry.name, refs[0])
            elif len(refs) > 1:
                listed = ", ".join(p.name for p in refs)
                problems.append(f"{entry.name}: {len(refs)} reference images ({listed}); keep one")
            elif len(images) == 1:
                add(entry.name, images[0])
            elif not images:
                problems.append(f"{entry.name}: folder holds no image")
            else:
                problems.append(
                    f"{entry.name}: {len(images)} images and none named {REFERENCE_STEM}.*; "
                    f"name the face to use {REFERENCE_STEM}.png (or .jpg)"
                )
        elif _is_face_file(entry):
            add(entry.stem, entry)
        else:
            notes.append(f"ignored {entry.name} (not an image or identity folder)")
    return sorted(found.values(), key=lambda s: s.name), problems, notes


# --------------------------------------------------------------------------------------------
# Model loading


def _looks_like_path(id_or_path: str) -> bool:
    return id_or_path.startswith(("/", ".", "~")) or Path(id_or_path).expanduser().exists()


def _in_cache(repo_id: str, filename: str, cache_dir: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    except Exception:
        return False
    return isinstance(found, str)


def _image_encoder_path(config: SynthConfig) -> str:
    folder = config.image_encoder_folder
    return folder if "/" in folder else f"{config.ip_adapter_subfolder}/{folder}".lstrip("/")


def download_instructions(config: SynthConfig) -> list[str]:
    """Shell commands that put ``config``'s hub models into the local Hugging Face cache.

    Run them once on a machine with internet access (same HF_HOME / HF_HUB_CACHE as the workers),
    or use ``huggingface_hub.snapshot_download(repo_id, allow_patterns=[...])`` with the same
    patterns. (``hf`` is huggingface_hub's CLI; before huggingface_hub 1.0 it was ``huggingface-cli``.)
    """
    commands = []
    if not _looks_like_path(config.base_model):
        weights = f"*/*.{config.variant}.safetensors" if config.variant else "*/*.safetensors"
        exclude = "" if config.variant else ' --exclude "*.fp16.safetensors"'
        commands.append(
            f'hf download {config.base_model} --include "*.json" --include "*.txt" --include "{weights}"{exclude}'
        )
    if not _looks_like_path(config.ip_adapter_repo):
        weight = f"{config.ip_adapter_subfolder}/{config.ip_adapter_weight_name}".lstrip("/")
        encoder = _image_encoder_path(config)
        commands.append(
            f"hf download {config.ip_adapter_repo} {weight} {encoder}/config.json {encoder}/model.safetensors"
        )
    return commands


def _missing(what: str, model_id: str, config: SynthConfig, detail: str = "", partial: bool = False) -> MissingWeights:
    """The error for a model that is not (completely) on this machine: the id and how to fetch it."""
    if _looks_like_path(model_id):
        problem = f"is incomplete ({detail})" if partial else (detail or "is not a usable local folder")
        return MissingWeights(
            f"{what}: {model_id} {problem}. Point it at a folder written by "
            "save_pretrained (or the hub repo's layout), or at a hub id fetched ahead of time."
        )
    commands = "\n  ".join(c for c in download_instructions(config) if f" {model_id} " in c)
    return MissingWeights(
        f"{what} '{model_id}' is {'only partly' if partial else 'not'} in the local Hugging Face cache"
        f"{f' ({detail})' if detail else ''}, "
        "and `pipeline synth` never downloads. Fetch it ahead of time (same HF_HOME as here):\n  "
        f"{commands}\n(or huggingface_hub.snapshot_download('{model_id}', allow_patterns=[...]) with those files; "
        "older huggingface_hub: `huggingface-cli download` instead of `hf download`)"
    )


def check_models(config: SynthConfig) -> None:
    """Raise :class:`MissingWeights` (naming the id and the download command) unless the base
    model and the IP-Adapter files are on this machine. No network I/O."""
    base = config.base_model
    if _looks_like_path(base):
        if not (Path(base).expanduser() / "model_index.json").is_file():
            raise _missing("Stable Diffusion base model", base, config, "has no model_index.json")
    elif not _in_cache(base, "model_index.json", config.cache_dir):
        raise _missing("Stable Diffusion base model", base, config)

    repo = config.ip_adapter_repo
    weight = f"{config.ip_adapter_subfolder}/{config.ip_adapter_weight_name}".lstrip("/")
    encoder_config = f"{_image_encoder_path(config)}/config.json"
    for needed in (weight, encoder_config):
        if _looks_like_path(repo):
            if not (Path(repo).expanduser() / needed).is_file():
                raise _missing("IP-Adapter", repo, config, f"lacks {needed}")
        elif not _in_cache(repo, needed, config.cache_dir):
            raise _missing("IP-Adapter", repo, config, f"{needed} missing")


def _dtype_kwarg() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); use what this version takes."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401  (probe: newer diffusers only)
    except ImportError:
        return "torch_dtype"
    return "dtype"


def load_pipeline(config: SynthConfig | None = None) -> Any:
    """A ready ``StableDiffusionPipeline`` with the IP-Adapter loaded and scaled, on the config's device.

    Loads only local files (``local_files_only=True``): hub ids must already be in the Hugging
    Face cache, else :class:`~pipeline.errors.MissingWeights` names the id and the
    download command. The pipeline's own progress bar is disabled.

    Raises:
        MissingWeights: a model is not on this machine.
        ImportError: diffusers is not installed (the ``train`` extra).
        RuntimeError: CUDA requested but unavailable.
    """
    config = config or SynthConfig()
    try:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import is_accelerate_available
    except ImportError as exc:
        raise ImportError("pipeline synth needs diffusers: pip install 'photo-pipeline[train]' (and PyTorch)") from exc
    from pipeline.devices import resolve_device, resolve_dtype

    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    check_models(config)

    common: dict[str, Any] = {
        "local_files_only": True,
        "cache_dir": config.cache_dir,
        "low_cpu_mem_usage": is_accelerate_available(),
    }
    kwargs: dict[str, Any] = dict(common, **{_dtype_kwarg(): dtype})
    if config.variant:
        kwargs["variant"] = config.variant
    if not config.safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(config.base_model, **kwargs)
    except OSError as exc:  # a partial snapshot: a component's files are missing
        raise _missing("Stable Diffusion base model", config.base_model, config, str(exc), partial=True) from exc
    try:
        pipe.load_ip_adapter(
            config.ip_adapter_repo,
            subfolder=config.ip_adapter_subfolder,
            weight_name=config.ip_adapter_weight_name,
            image_encoder_folder=config.image_encoder_folder,
            **common,
        )
    except OSError as exc:
        raise _missing("IP-Adapter", config.ip_adapter_repo, config, str(exc), partial=True) from exc
    pipe.set_ip_adapter_scale(config.ip_adapter_scale)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --------------------------------------------------------------------------------------------
# Generation


def _settings(config: SynthConfig, pipe: Any | None) -> dict[str, Any]:
    """The generation settings recorded in the manifest (what decides the pixels besides prompt/seed).

    Device and dtype come from ``pipe`` when given, else from the config (resolved, nothing loaded),
    so a resume-only run that never loads the pipeline records the same settings.
    """
    if pipe is not None:
        device_type, dtype = pipe.device.type, str(pipe.dtype).replace("torch.", "")
    else:
        from pipeline.devices import resolve_device, resolve_dtype

        device = resolve_device(config.device)
        device_type, dtype = device.type, str(resolve_dtype(config.dtype, device)).replace("torch.", "")
    return {
        "base_model": config.base_model,
        "variant": config.variant,
        "ip_adapter_repo": config.ip_adapter_repo,
        "ip_adapter_subfolder": config.ip_adapter_subfolder,
        "ip_adapter_weight_name": config.ip_adapter_weight_name,
        "image_encoder_folder": config.image_encoder_folder,
        "ip_adapter_scale": config.ip_adapter_scale,
        "steps": config.steps,
        "guidance": config.guidance,
        "size": config.size,
        "negative_prompt": config.negative_prompt,
        "safety_checker": config.safety_checker,
        "device_type": device_type,
        "dtype": dtype,
    }


def _settings_id(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_png(image: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    _atomic_write_bytes(path, buffer.getvalue())


def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable manifest (%s); starting a new one", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    _atomic_write_bytes(path, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def synthesize(
    faces_dir: str | Path,
    out_dir: str | Path,
    config: SynthConfig | None = None,
    pipe: Any | None = None,
    progress: bool = True,
) -> SynthReport:
    """Generate ``config.images_per_identity`` new images of every face in ``faces_dir`` into ``out_dir``.

    Args:
        faces_dir: identity folders (``NAME/ref_img.*`` or ``NAME/`` with one image) and/or flat
            image files (identity = file stem); see :func:`discover_faces`.
        out_dir: written in the release's identity-folder format plus ``synth.json`` (module docstring);
            created if needed. Must differ from ``faces_dir``.
        config: settings (defaults: SD 1.5 + IP-Adapter plus-face, 10 images of 512 px).
        pipe: an already loaded pipeline (from :func:`load_pipeline`). When None it is loaded from
            ``config`` on the first image that must be generated (a run with nothing left to do
            loads no model). Its IP-Adapter scale is set to ``config.ip_adapter_scale``. The
            manifest records ``config``'s model ids, so pass the config the pipe was loaded with.
        progress: show a tqdm bar over all images (skipped ones included).

    Returns:
        A :class:`SynthReport`. Unusable faces are listed in ``failures``, never fatal. Faces are
        decoded one identity at a time (memory stays flat for large face sets).

    Raises:
        FileNotFoundError: ``faces_dir`` is not a folder.
        ValueError: ``out_dir`` is ``faces_dir``.
        MissingWeights: a model is not on this machine (when ``pipe`` is None).
    """
    import torch
    from tqdm.auto import tqdm

    from pipeline.photos.decode import PhotoError, decode_photo

    config = config or SynthConfig()
    faces_dir, out_dir = Path(faces_dir), Path(out_dir)
    if faces_dir.resolve() == out_dir.resolve():
        raise ValueError(f"the output folder must differ from the faces folder ({faces_dir})")
    sources, problems, notes = discover_faces(faces_dir, exclude=out_dir)
    for line in problems:
        logger.warning("synth: %s", line)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    report = SynthReport(out_dir=out_dir, manifest=manifest_path, failures=list(problems), notes=list(notes))

    settings = _settings(config, pipe)
    settings_id = _settings_id(settings)
    old = _load_manifest(manifest_path)
    identities, all_settings = old.get("identities"), old.get("settings")
    old_identities: dict[str, Any] = identities if isinstance(identities, dict) else {}
    old_settings: dict[str, Any] = all_settings if isinstance(all_settings, dict) else {}
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "settings": {**old_settings, settings_id: settings},
        "current_settings": settings_id,
        "prompts": list(config.prompts),
        "seed": config.seed,
        "images_per_identity": config.images_per_identity,
        "identities": dict(old_identities),
    }

    ready = False

    def ready_pipe() -> Any:
        nonlocal pipe, ready
        if not ready:
            pipe = pipe if pipe is not None else load_pipeline(config)
            pipe.set_ip_adapter_scale(config.ip_adapter_scale)
            ready = True
        return pipe

    n_images = config.images_per_identity
    bar = tqdm(total=len(sources) * n_images, disable=not progress, unit="img", desc="synth", dynamic_ncols=True)
    kept_other_settings = 0
    try:
        for source in sources:
            bar.set_postfix_str(source.name, refresh=False)
            try:
                face = decode_photo(source.path, MAX_FACE_PIXELS).image
                face_sha = _sha256(source.path)
            except (PhotoError, OSError) as exc:
                reason = exc.reason if isinstance(exc, PhotoError) else str(exc)
                report.failures.append(f"{source.name}: unreadable face image {source.path.name}: {reason}")
                logger.warning("synth: %s", report.failures[-1])
                bar.update(n_images)
                continue
            folder = out_dir / source.name
            folder.mkdir(parents=True, exist_ok=True)
            previous = old_identities.get(source.name)
            previous = previous if isinstance(previous, dict) else {}
            stale = previous.get("source_sha256") not in (None, face_sha)
            if stale:
                report.notes.append(f"{source.name}: face image changed since the last run; regenerating its images")
                for old_query in folder.glob("query_img_*.png"):
                    old_query.unlink()
            ref_path = folder / REFERENCE_NAME
            if stale or not ref_path.is_file():
                _save_png(face, ref_path)
            old_images = (
                {} if stale else {rec.get("file"): rec for rec in previous.get("images", []) if isinstance(rec, dict)}
            )
            records: dict[str, dict[str, Any]] = {}
            for index in range(n_images):
                name = QUERY_TEMPLATE.format(index)
                path = folder / name
                seed = image_seed(config.seed, source.name, index)
                prompt = prompt_for(config.prompts, source.name, index)
                fresh = {"file": name, "index": index, "prompt": prompt, "seed": seed, "settings": settings_id}
                if path.is_file():  # resume: keep the image and what the manifest said about it
                    records[name] = old_images.get(name) or fresh
                    kept_other_settings += records[name].get("settings") != settings_id
                    report.skipped += 1
                    bar.update(1)
                    continue
                result = ready_pipe()(
                    prompt=prompt,
                    negative_prompt=config.negative_prompt or None,
                    ip_adapter_image=face,
                    num_inference_steps=config.steps,
                    guidance_scale=config.guidance,
                    height=config.size,
                    width=config.size,
                    generator=torch.Generator(device="cpu").manual_seed(seed),
                    output_type="pil",
                )
                flags = getattr(result, "nsfw_content_detected", None)
                if flags and flags[0]:
                    report.filtered.append(f"{source.name}/{name}")
                else:
                    _save_png(result.images[0], path)
                    records[name] = fresh
                    report.generated += 1
                bar.update(1)
            for old_name, rec in old_images.items():  # images beyond images_per_identity from earlier runs
                if old_name not in records and (folder / str(old_name)).is_file():
                    records[str(old_name)] = rec
            manifest["identities"][source.name] = {
                "source": str(source.path.resolve()),
                "source_sha256": face_sha,
                "reference": REFERENCE_NAME,
                "images": [records[key] for key in sorted(records)],
            }
            report.identities.append(source.name)
            _write_manifest(manifest_path, manifest)
    finally:
        bar.close()
    _write_manifest(manifest_path, manifest)
    if kept_other_settings:
        report.notes.append(
            f"{kept_other_settings} existing images were kept although they were made with other "
            "settings (see synth.json); delete them to regenerate"
        )
    if report.filtered:
        logger.warning("synth: %d images flagged by the safety checker were not written", len(report.filtered))
    if not report.identities:
        logger.warning("synth: no usable face in %s", faces_dir)
    logger.info("synth: %s", report.summary())
    return report


__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_IP_ADAPTER_REPO",
    "DEFAULT_IP_ADAPTER_SUBFOLDER",
    "DEFAULT_IP_ADAPTER_WEIGHT",
    "FaceSource",
    "MANIFEST_NAME",
    "SynthConfig",
    "SynthReport",
    "check_models",
    "discover_faces",
    "download_instructions",
    "image_seed",
    "load_pipeline",
    "prompt_for",
    "synthesize",
]
