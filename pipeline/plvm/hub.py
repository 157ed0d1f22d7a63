"""Where model weights live: local folders or the local Hugging Face cache; never downloads,
except in :func:`pull_models` (the explicit `pipeline models pull` step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.plvm.errors import MissingWeightsError, ModelDownloadError

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pth", "*.pt")
# Files `pull_models` never needs (other frameworks' weights).
IGNORE_PATTERNS = ["*.msgpack", "*.h5", "*.ot", "*.onnx", "flax_model*", "tf_model*", "rust_model*", "coreml/*"]


def looks_like_path(id_or_path: str) -> bool:
    """True for things that are meant as filesystem paths (absolute, ./, ~, or existing)."""
    return id_or_path.startswith(("/", ".", "~")) or Path(id_or_path).expanduser().exists()


def _has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(any(folder.glob(p)) for p in WEIGHT_PATTERNS)


def find_local(id_or_path: str, cache_dir: str | Path | None = None) -> Path | None:
    """The local folder holding ``id_or_path`` (a folder, or a hub id in the local cache), or None.

    Does no network I/O. A folder counts only if it has config.json and a weight file.
    """
    if looks_like_path(id_or_path):
        folder = Path(id_or_path).expanduser()
        return folder if folder.is_dir() and _has_weights(folder) else None
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(id_or_path, local_files_only=True, cache_dir=cache_dir))
    except Exception:  # LocalEntryNotFoundError, invalid repo id, ...
        return None
    return folder if _has_weights(folder) else None


def resolve_model_dir(id_or_path: str, what: str, setting: str, cache_dir: str | Path | None = None) -> Path:
    """Local folder for a model, or MissingWeightsError naming it and the command that fixes it.

    what: human name ("DINOv2 reference encoder"); setting: the PIPELINE_* variable that selects it.
    """
    folder = find_local(id_or_path, cache_dir=cache_dir)
    if folder is not None:
        return folder
    if looks_like_path(id_or_path):
        raise MissingWeightsError(
            f"{what}: folder {id_or_path} does not exist or has no config.json and weight file. "
            f"Point {setting} at a folder written by save_pretrained, or at a hub id and run `pipeline models pull`."
        )
    raise MissingWeightsError(
        f"{what}: '{id_or_path}' is not in the local Hugging Face cache and workers never download. "
        f"Fetch it once with `pipeline models pull` (or set {setting} to a local folder)."
    )


def pull_models(settings: Any, cache_dir: str | Path | None = None) -> list[Path]:
    """Download the DINOv2 and LLaVA snapshots named in ``settings`` into the hub cache.

    Local folders are skipped. Prefers safetensors: ``*.bin`` is skipped when a repo has safetensors.
    Returns the local snapshot folders. Raises ModelDownloadError with the id and the cause.
    Side effects: network I/O, writes to the Hugging Face cache.
    """
    from huggingface_hub import HfApi, snapshot_download

    folders: list[Path] = []
    for repo_id in (settings.dinov2_model, settings.llava_model):
        if looks_like_path(repo_id):
            folders.append(Path(repo_id).expanduser())
            continue
        try:
            files = HfApi().list_repo_files(repo_id)
            ignore = list(IGNORE_PATTERNS)
            if any(f.endswith(".safetensors") for f in files):
                ignore.append("*.bin")
            folders.append(Path(snapshot_download(repo_id, ignore_patterns=ignore, cache_dir=cache_dir)))
        except Exception as exc:
            raise ModelDownloadError(
                f"could not download '{repo_id}' from the Hugging Face hub ({type(exc).__name__}: {exc}). "
                "Check the network and HF_HUB_OFFLINE, or copy the model folder over and set its path."
            ) from exc
    return folders
