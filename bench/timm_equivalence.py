"""The timm reference backend against the transformers one, at DINOv2-base's real shapes.

    bash scripts/timm_check.sh        # makes .venv-timm (torch 2.14.1 + torchvision 0.29.1 + timm) and runs this
    .venv-timm/bin/python bench/timm_equivalence.py [--photos 4] [--out bench/out/timm_equivalence.json]

timm needs a torchvision built for the installed torch; the CPU torch of the main environment has
none on PyPI, so this runs in its own environment (about 6 GB: a CUDA build that also runs on the
CPU) instead of in every CI run. A random-weight DINOv2-base (hidden 768, 12 layers, 37 x 37
position grid, saved with ``save_pretrained``) is loaded by both backends at 224 px, in both
position-embedding geometries; z_ref (B, 257, 768) of the sample photos is compared. Prints a table,
writes JSON. Float32 on the CPU; about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "timm_equivalence.json")
    args = parser.parse_args(argv)

    import timm
    import torch
    import torchvision
    from transformers import Dinov2Config, Dinov2Model

    from pipeline.plvm.reference import load_reference_encoder
    from pipeline.plvm.tiny import write_dinov2_preprocessor

    torch.manual_seed(0)
    figures: dict = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "geometries": {},
    }
    photos = _photos(args.photos)
    with tempfile.TemporaryDirectory(prefix="timm-eq-") as tmp:
        folder = Path(tmp) / "dinov2-base-random"
        Dinov2Model(Dinov2Config()).save_pretrained(folder)  # DINOv2-base shapes, random weights
        write_dinov2_preprocessor(folder, shortest_edge=256, crop=224)
        for geometry in ("release", "size"):
            row = {}
            outputs = {}
            for backend in ("transformers", "timm"):
                start = time.perf_counter()
                encoder = load_reference_encoder(folder, backend, geometry=geometry)
                row[f"{backend}_load_s"] = time.perf_counter() - start
                start = time.perf_counter()
                outputs[backend] = encoder.encode(photos)  # (B, 257, 768) float32
                row[f"{backend}_encode_ms_per_photo"] = 1e3 * (time.perf_counter() - start) / len(photos)
            hf, tm = outputs["transformers"], outputs["timm"]
            row["shape"] = list(hf.shape)
            row["max_abs_diff"] = float((hf - tm).abs().max())
            row["relative_l2"] = float((hf - tm).norm() / hf.norm())
            figures["geometries"][geometry] = row
    print(f"torch {figures['torch']}, torchvision {figures['torchvision']}, timm {figures['timm']}; DINOv2-base random")
    print("geometry | z_ref shape    | max |diff|  | relative L2 | encode ms/photo transformers / timm")
    for geometry, row in figures["geometries"].items():
        print(
            f"{geometry:8} | {str(tuple(row['shape'])):14} | {row['max_abs_diff']:.2e} | {row['relative_l2']:.2e}"
            f"    | {row['transformers_encode_ms_per_photo']:.0f} / {row['timm_encode_ms_per_photo']:.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written {args.out}")
    return figures


def _photos(n: int):
    """The public-domain sample photos (scikit-image/matplotlib), repeated with a coloured strip."""
    import numpy as np
    from PIL import Image

    from pipeline.datasets import sample_album as sample

    bases = [sample.astronaut(), sample.grace_hopper()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = bases[i % 2].copy()
        img[-8:] = rng.integers(0, 255, size=3)
        out.append(Image.fromarray(img))
    return out


if __name__ == "__main__":
    main()
