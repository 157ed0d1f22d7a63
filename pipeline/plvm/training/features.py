"""Frozen features of training images: reference z_ref (DINOv2) and LLaVA image rows.

Both encoders are frozen, so an image's features never change during training: with ``cache``
each image is decoded and encoded once (z_ref kept as float32 on the CPU, image rows on the
training device in the LVLM's dtype). Images are decoded like ``pipeline eval recognition`` does
(:func:`pipeline.photos.decode.decode_photo`: EXIF orientation, RGB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pipeline.plvm.batching import chunks

if TYPE_CHECKING:
    from PIL import Image

    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.reference import ReferenceEncoder


class FrozenFeatures:
    """z_ref and image rows for paths, computed without gradients (optionally cached).
    ``max_pixels``: the decompression-bomb guard (``Settings.max_image_pixels``)."""

    def __init__(
        self, encoder: ReferenceEncoder, lvlm: Lvlm, device: torch.device, max_pixels: int, cache: bool = True
    ) -> None:
        self.encoder = encoder
        self.lvlm = lvlm
        self.device = device
        self.max_pixels = max_pixels
        self.cache = cache
        self._refs: dict[Path, torch.Tensor] = {}
        self._images: dict[Path, torch.Tensor] = {}

    def _load(self, path: Path) -> Image.Image:
        """RGB image, EXIF-oriented. Raises pipeline.photos.decode.PhotoError for unreadable files."""
        from pipeline.photos.decode import decode_photo

        return decode_photo(Path(path), self.max_pixels).image

    def _missing(self, paths: Sequence[Path], store: dict[Path, torch.Tensor]) -> list[Path]:
        return list(dict.fromkeys(p for p in paths if p not in store))

    @torch.no_grad()
    def references(self, paths: Sequence[Path]) -> torch.Tensor:
        """z_ref (B, T, width) float32 on ``device``, one per path (in order)."""
        store: dict[Path, torch.Tensor] = self._refs if self.cache else {}
        todo = self._missing(paths, store)
        if todo:
            z = self.encoder.encode([self._load(p) for p in todo])  # (U, T, width) float32, CPU
            store.update(zip(todo, z, strict=True))
        return torch.stack([store[p] for p in paths]).to(self.device)

    @torch.no_grad()
    def images(self, paths: Sequence[Path | None]) -> list[torch.Tensor | None]:
        """Per path: (n_image_tokens, D) image rows in the LVLM's dtype on its device, or None."""
        store: dict[Path, torch.Tensor] = self._images if self.cache else {}
        todo = self._missing([p for p in paths if p is not None], store)
        if todo:
            store.update(zip(todo, self.lvlm.encode_images([self._load(p) for p in todo]), strict=True))
        return [store[p] if p is not None else None for p in paths]

    def warm(self, references: Sequence[Path], images: Sequence[Path], chunk: int = 32) -> None:
        """Fill the cache for these paths ahead of training (no-op without ``cache``)."""
        if not self.cache:
            return
        for part in chunks(references, chunk):
            self.references(part)
        for part in chunks(images, chunk):
            self.images(part)
