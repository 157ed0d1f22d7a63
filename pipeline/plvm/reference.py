"""Reference encoder: DINOv2 image -> z_ref (B, 1 + N_patches, width), CLS first, after the final norm.

Position embeddings are resampled to the crop's patch grid in the chosen geometry
(:mod:`pipeline.plvm.geometry`: "release", the default, or "size").

Two backends share one :class:`ReferenceTransform` (read from the model folder's
preprocessor_config.json; 256 -> 224 crop for dinov2-base, giving 257 x 768):

- "transformers": ``AutoModel`` (``Dinov2Model``), ``last_hidden_state``.
- "timm": ``timm.create_model("vit_base_patch14_dinov2", pretrained=False, img_size=crop, ...)``
  with weights converted from the same transformers folder (:mod:`pipeline.plvm.timm_convert`),
  or a timm state-dict file (``.safetensors``/``.pth``) for the base architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, cast

import torch
from PIL import Image

from pipeline.plvm.geometry import Geometry, use_geometry
from pipeline.plvm.transforms import ReferenceTransform

Backend = Literal["transformers", "timm"]
TIMM_ARCH = "vit_base_patch14_dinov2"


class _TimmBackbone(Protocol):
    """The part of a timm ViT that the "timm" backend calls."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...


class ReferenceEncoder:
    """A frozen image backbone plus its transform. ``encode`` is the only method callers need."""

    def __init__(
        self,
        model: torch.nn.Module,
        transform: ReferenceTransform,
        width: int,
        backend: Backend,
        geometry: Geometry = "release",
    ) -> None:
        """geometry: how ``model`` resamples its position embeddings (already applied to ``model``)."""
        self.model = model.eval().requires_grad_(False)
        self.transform = transform
        self.width = width
        self.backend = backend
        self.geometry = geometry

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values (B, 3, crop, crop) on the model's device/dtype -> (B, T, width)."""
        if self.backend == "timm":
            # torch types every Module attribute as Tensor | Module, so it cannot see timm's forward_features method
            return cast(_TimmBackbone, self.model).forward_features(pixel_values)
        return self.model(pixel_values=pixel_values).last_hidden_state

    @torch.no_grad()
    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> z_ref, float32 on CPU, shape (B, 1 + (crop/patch)^2, width)."""
        pixel_values = self.transform(images).to(self.device, self.dtype)  # (B, 3, crop, crop)
        return self.features(pixel_values).float().cpu()


def load_reference_encoder(
    source: Path,
    backend: Backend = "transformers",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    geometry: Geometry = "release",
) -> ReferenceEncoder:
    """Load from a local folder (save_pretrained layout) or, for "timm", optionally a weight file.
    ``geometry``: how position embeddings are resampled to the crop's patch grid.

    Always local (``local_files_only=True``); resolve hub ids first with ``hub.resolve_model_dir``.
    Side effects: reads weights, moves the model to ``device``.
    """
    source = Path(source)
    if backend == "transformers":
        return _load_transformers(source, device, dtype, geometry)
    if backend == "timm":
        return _load_timm(source, device, dtype, geometry)
    raise ValueError(f"reference_backend '{backend}' is not one of transformers, timm")


def _load_transformers(
    folder: Path, device: torch.device | str, dtype: torch.dtype, geometry: Geometry
) -> ReferenceEncoder:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
    use_geometry(model, geometry)
    transform = ReferenceTransform.from_model_dir(folder)
    return ReferenceEncoder(model, transform, model.config.hidden_size, "transformers", geometry)


def _load_timm(source: Path, device: torch.device | str, dtype: torch.dtype, geometry: Geometry) -> ReferenceEncoder:
    """timm backbone at the transform's crop size; weights converted from a transformers folder."""
    try:
        import timm
    except ImportError as exc:
        raise ImportError(
            "reference_backend 'timm' needs the timm package (and torchvision); install them or use "
            "reference_backend 'transformers', which gives the same z_ref"
        ) from exc
    from pipeline.plvm.timm_convert import dinov2_hf_to_timm

    folder = source if source.is_dir() else source.parent
    transform = ReferenceTransform.from_model_dir(folder)
    if source.is_dir():
        from transformers import AutoModel

        hf = AutoModel.from_pretrained(source, local_files_only=True, dtype=torch.float32)
        cfg = hf.config
        if getattr(cfg, "use_swiglu_ffn", False):
            raise NotImplementedError("timm backend: SwiGLU DINOv2 (giant) is not supported")
        patch = cfg.patch_size
        arch_kwargs = dict(
            patch_size=patch,
            embed_dim=cfg.hidden_size,
            depth=cfg.num_hidden_layers,
            num_heads=cfg.num_attention_heads,
            mlp_ratio=cfg.mlp_ratio,
            init_values=cfg.layerscale_value,
            qkv_bias=cfg.qkv_bias,
        )
        state = dinov2_hf_to_timm(hf.state_dict(), grid=transform.crop_size // patch, geometry=geometry)
        del hf
    else:
        from pipeline.plvm.geometry import resample_position_embeddings

        state = _read_timm_file(source)
        grid = transform.crop_size // 14
        state["pos_embed"] = resample_position_embeddings(state["pos_embed"], grid, grid, geometry)  # (1, 1+grid^2, D)
        arch_kwargs = {}
    model = timm.create_model(TIMM_ARCH, pretrained=False, img_size=transform.crop_size, num_classes=0, **arch_kwargs)
    model.load_state_dict(state, strict=True)
    model = model.to(device=device, dtype=dtype)
    return ReferenceEncoder(model, transform, model.embed_dim, "timm", geometry)


def _read_timm_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state) if isinstance(state, dict) else state
