"""Reference transform (resize 256 -> centre crop 224 -> ImageNet normalise) and LLaVA's pad-to-square."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.plvm.transforms import IMAGENET_MEAN, IMAGENET_STD, ReferenceTransform, expand_to_square


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (224, 224), (1000, 257), (256, 256)])
def test_output_shape_and_dtype(size):
    out = ReferenceTransform()([Image.new("RGB", size, (10, 20, 30)), Image.new("L", size, 128)])
    assert out.shape == (2, 3, 224, 224) and out.dtype == torch.float32


def test_centre_crop_keeps_the_middle():
    # 512 x 256: the shorter side is already 256 (no resize); the crop is columns [144, 368).
    arr = np.zeros((256, 512, 3), dtype=np.uint8)
    arr[:, :144] = (255, 0, 0)  # left: red, cropped away
    arr[:, 144:368] = (0, 255, 0)  # middle: green, exactly the crop
    arr[:, 368:] = (0, 0, 255)  # right: blue, cropped away
    out = ReferenceTransform()([Image.fromarray(arr)])[0]
    green = (torch.tensor([0.0, 1.0, 0.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out, green.view(3, 1, 1).expand(3, 224, 224), rtol=0, atol=1e-6)

    # Moving the green band by one column puts red (or blue) into the first (last) crop column.
    arr2 = np.roll(arr, 1, axis=1)
    out2 = ReferenceTransform()([Image.fromarray(arr2)])[0]
    assert not torch.allclose(out2[:, :, 0], out[:, :, 0])


def test_matches_transformers_pil_image_processor():
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    rng = np.random.default_rng(3)
    image = Image.fromarray((rng.random((233, 341, 3)) * 255).astype("uint8"))
    hf = BitImageProcessorPil(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        resample=3,
    )
    expected = hf(images=[image], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(ReferenceTransform()([image]), expected, rtol=0, atol=1e-5)


def test_reads_sizes_from_model_folder(tiny_bundle):
    t = ReferenceTransform.from_model_dir(tiny_bundle / "dinov2")
    assert (t.crop_size, t.resize_size) == (56, 64)
    assert ReferenceTransform.from_model_dir(tiny_bundle) == ReferenceTransform()  # no file: DINOv2 defaults


def test_expand_to_square_pads_with_fill_and_centres():
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    square = np.asarray(expand_to_square(image, (122, 116, 104)))
    assert square.shape == (40, 40, 3)
    assert (square[:10] == (122, 116, 104)).all() and (square[30:] == (122, 116, 104)).all()
    assert (square[10:30] == (200, 10, 10)).all()
    assert expand_to_square(Image.new("L", (8, 8)), (0, 0, 0)).size == (8, 8)
