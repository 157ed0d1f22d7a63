"""``pipeline synth``: new images of each identity in varied scenes (IP-Adapter; the `train` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import UserError, app, err, out


@app.command()
def synth(
    faces: Annotated[Path, typer.Option("--faces", help="Identity folders (NAME/ref_img.*) or one image per identity")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output in the identity-folder format")],
    n: Annotated[int, typer.Option("--n", help="Images per identity")] = 10,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="One scene prompt per line (default: the built-in list)")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    steps: Annotated[int, typer.Option("--steps")] = 30,
    size: Annotated[int, typer.Option("--size", help="Output width = height, pixels")] = 512,
    scale: Annotated[float, typer.Option("--ip-adapter-scale", help="Face strength (0 = text only)")] = 0.7,
    base_model: Annotated[str | None, typer.Option("--base-model", help="SD 1.5-family model id or folder")] = None,
    ip_adapter: Annotated[str | None, typer.Option("--ip-adapter", help="IP-Adapter repo id or folder")] = None,
    ip_weight: Annotated[str | None, typer.Option("--ip-adapter-weight", help="IP-Adapter weight file name")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    no_safety_checker: Annotated[bool, typer.Option("--no-safety-checker")] = False,
) -> None:
    """Synthesize (reference, query) training data: N new images per identity (GPU expected)."""
    from dataclasses import replace

    try:
        from pipeline.synth import SynthConfig, load_prompts, synthesize
    except ImportError as exc:  # diffusers missing
        raise UserError(
            f"`pipeline synth` needs the train extra (pip install 'photo-pipeline[train]'): {exc}"
        ) from None
    if not faces.is_dir():
        raise UserError(f"{faces}: not a folder")
    config = SynthConfig(
        images_per_identity=n,
        seed=seed,
        steps=steps,
        size=size,
        ip_adapter_scale=scale,
        device=device,
        prompts=tuple(load_prompts(prompts)),
        safety_checker=not no_safety_checker,
    )
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "base_model": base_model,
            "ip_adapter_repo": ip_adapter,
            "ip_adapter_weight_name": ip_weight,
        }.items()
        if v
    }
    config = replace(config, **overrides)
    try:
        report = synthesize(faces, out_dir, config)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    out.print(report.summary())
    for failure in report.failures:
        err.print(f"[yellow]failed:[/] {failure}")
    if not report.ok:
        raise typer.Exit(1)
