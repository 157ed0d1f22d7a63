"""How DINOv2's position embeddings are fitted to the reference crop: the release's way or ours.

DINOv2-base was trained with a 37 x 37 patch grid (518 px); a 224 px reference crop has 16 x 16
patches, so the position embeddings are resampled (bicubic, align_corners=False, in float32):

- ``"release"``: what transformers 4.37 did, and so what the released Aligner saw:
  ``interpolate(scale_factor=((16 + 0.1) / 37, (16 + 0.1) / 37))``. With a scale factor the sampling
  grid is ``(i + 0.5) * 37 / 16.1 - 0.5``, shifted by up to 0.22 source cells from the exact fit.
- ``"size"``: what transformers >= 4.45 does, ``interpolate(size=(16, 16))`` (an Aligner trained with
  our code on a recent transformers saw this).

The mode is a setting (``Settings.dinov2_geometry``) and part of the model version of every concept.
"""

from __future__ import annotations

import math
import types
from typing import Literal

import torch
import torch.nn.functional as F

Geometry = Literal["release", "size"]
GEOMETRIES: tuple[Geometry, ...] = ("release", "size")


def resample_patch_grid(patch_pos: torch.Tensor, grid_h: int, grid_w: int, geometry: Geometry) -> torch.Tensor:
    """patch_pos: (1, D, g, g) float32 -> (1, D, grid_h, grid_w), bicubic, align_corners=False."""
    if geometry == "release":
        g = patch_pos.shape[-1]
        scale = (float((grid_h + 0.1) / g), float((grid_w + 0.1) / g))
        out = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", align_corners=False)
        if out.shape[-2:] != (grid_h, grid_w):  # the +0.1 keeps floor(g * scale) == grid
            raise ValueError(f"release geometry gave a {tuple(out.shape[-2:])} grid, not {(grid_h, grid_w)}")
        return out
    if geometry == "size":
        return F.interpolate(patch_pos, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
    raise ValueError(f"dinov2_geometry {geometry!r} is not one of {', '.join(GEOMETRIES)}")


def resample_position_embeddings(pos: torch.Tensor, grid_h: int, grid_w: int, geometry: Geometry) -> torch.Tensor:
    """pos: (1, 1 + g*g, D), CLS first -> (1, 1 + grid_h*grid_w, D) in pos's dtype (resampled in float32).

    Unchanged when the grid already fits and is square (as both transformers versions do).
    """
    n_patches = pos.shape[1] - 1
    g = math.isqrt(n_patches)
    if g * g != n_patches:
        raise ValueError(f"position embeddings for {n_patches} patches are not a square grid")
    if g * g == grid_h * grid_w and grid_h == grid_w:
        return pos
    dim = pos.shape[-1]
    patch_pos = pos[:, 1:].reshape(1, g, g, dim).permute(0, 3, 1, 2)  # (1, D, g, g)
    patch_pos = resample_patch_grid(patch_pos.float(), grid_h, grid_w, geometry).to(pos.dtype)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)  # (1, grid_h*grid_w, D)
    return torch.cat((pos[:, :1], patch_pos), dim=1)


def use_geometry(model: torch.nn.Module, geometry: Geometry) -> None:
    """Make a transformers ``Dinov2Model`` resample its position embeddings with ``geometry``.

    "size" leaves transformers' own method in place; "release" replaces the bound
    ``model.embeddings.interpolate_pos_encoding`` of this one instance. Raises ValueError for an
    unknown mode or a model without DINOv2 embeddings.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"dinov2_geometry {geometry!r} is not one of {', '.join(GEOMETRIES)}")
    embeddings = getattr(model, "embeddings", None)
    if embeddings is None or not hasattr(embeddings, "interpolate_pos_encoding"):
        raise ValueError(f"{type(model).__name__} has no DINOv2 position embeddings to resample")
    if geometry == "size":
        return

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        patch_h, patch_w = self.patch_embeddings.patch_size
        return resample_position_embeddings(self.position_embeddings, height // patch_h, width // patch_w, "release")

    embeddings.interpolate_pos_encoding = types.MethodType(interpolate_pos_encoding, embeddings)
