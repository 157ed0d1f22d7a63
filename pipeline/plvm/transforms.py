"""Image preprocessing written with PIL + numpy (no torchvision): DINOv2 reference transform and
LLaVA-1.5's "pad" (expand-to-square) step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
PREPROCESSOR_FILE = "preprocessor_config.json"


@dataclass(frozen=True)
class ReferenceTransform:
    """Resize the shorter side to ``resize_size`` (bicubic), centre-crop ``crop_size``, scale to
    [0, 1], normalise with ``mean``/``std``. Defaults are DINOv2's (256 -> 224, ImageNet stats).

    Integer arithmetic follows transformers' image processors: long side = int(resize * long / short),
    crop offset = (size - crop) // 2, so results match ``BitImageProcessorPil``.
    """

    crop_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ReferenceTransform:
        """Read sizes/statistics from ``<model_dir>/preprocessor_config.json`` (hub format) if present,
        else the DINOv2 defaults. Only ``size.shortest_edge``, ``crop_size``, ``image_mean``,
        ``image_std`` are used; the resize is always bicubic.
        """
        path = Path(model_dir) / PREPROCESSOR_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        crop = data.get("crop_size", cls.crop_size)
        if isinstance(crop, dict):
            if crop.get("height") != crop.get("width"):
                raise ValueError(f"{path}: non-square crop_size {crop} is not supported")
            crop = crop["height"]
        size = data.get("size", cls.resize_size)
        if isinstance(size, dict):
            size = size.get("shortest_edge", cls.resize_size)
        return cls(
            crop_size=int(crop),
            resize_size=int(size),
            mean=tuple(data.get("image_mean", IMAGENET_MEAN)),
            std=tuple(data.get("image_std", IMAGENET_STD)),
        )

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """RGB image of exactly crop_size x crop_size (pixels)."""
        image = image.convert("RGB")
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize_size, int(self.resize_size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
        c = self.crop_size
        if new_w < c or new_h < c:
            raise ValueError(f"resized image {new_w}x{new_h} is smaller than the crop {c}x{c}")
        left, top = (new_w - c) // 2, (new_h - c) // 2
        return image.crop((left, top, left + c, top + c))

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """images: PIL images of any size/mode. Returns float32 pixel values (B, 3, crop, crop)."""
        if not images:
            raise ValueError("ReferenceTransform needs at least one image")
        arrays = [np.asarray(self.resize_and_crop(im), dtype=np.float32) / 255.0 for im in images]
        x = torch.from_numpy(np.stack(arrays))  # (B, crop, crop, 3)
        x = x.permute(0, 3, 1, 2)  # (B, 3, crop, crop)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()


def expand_to_square(image: Image.Image, fill: tuple[int, ...]) -> Image.Image:
    """LLaVA-1.5 "pad" aspect mode: paste the RGB image centred on a square canvas of colour ``fill``.

    The canvas side is max(width, height); a square image is returned unchanged (converted to RGB).
    LLaVA-1.5 fills with its image processor's mean colour, ``tuple(int(m * 255) for m in image_mean)``.
    """
    image = image.convert("RGB")
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas
