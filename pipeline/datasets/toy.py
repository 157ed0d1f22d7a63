"""A procedurally drawn identity dataset in the release's recognition format (Yo'LLaVA/MyVLM style).

Each "person" is a cartoon bust with stable traits (skin, hair colour and style, eye colour and
shape, glasses, shirt colour and pattern, head shape); every photo of them varies what a real
album varies: position, scale, a small rotation, mirror, expression, background colour/texture,
random shapes, and sometimes a second, different person partly in frame. Identities differ by
their traits (any two differ in at least three, when the trait space allows), never by layout.

Used to show, on a CPU and in tests, that Aligner training and the evaluation path work end to
end. Deterministic for a seed (same seed, same bytes); hundreds of images per second at 112 px.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

Rgb = tuple[int, int, int]
Traits = dict[str, str]

COLOURS: dict[str, dict[str, Rgb]] = {
    "skin": {
        "porcelain": (255, 224, 196),
        "peach": (241, 190, 150),
        "tan": (212, 158, 98),
        "olive": (176, 124, 70),
        "brown": (126, 80, 44),
        "dark": (78, 50, 30),
    },
    "hair_colour": {
        "black": (30, 25, 25),
        "brown": (110, 70, 35),
        "blond": (235, 205, 95),
        "red": (190, 55, 30),
        "grey": (165, 165, 170),
        "blue": (45, 95, 210),
        "pink": (235, 115, 175),
    },
    "eye_colour": {
        "brown": (100, 60, 25),
        "blue": (40, 110, 220),
        "green": (40, 160, 70),
        "grey": (120, 130, 140),
        "violet": (140, 60, 190),
    },
    "shirt_colour": {
        "red": (215, 40, 40),
        "orange": (245, 140, 20),
        "yellow": (240, 215, 40),
        "green": (50, 160, 60),
        "teal": (20, 150, 150),
        "blue": (40, 80, 200),
        "purple": (120, 50, 170),
        "white": (245, 245, 245),
        "black": (35, 35, 35),
    },
}
SHAPES: dict[str, tuple[str, ...]] = {
    "hair_style": ("short", "long", "spiky", "bun", "mohawk"),
    "eye_shape": ("round", "narrow", "big"),
    "glasses": ("none", "round", "square"),
    "shirt_pattern": ("plain", "stripes", "dots", "checks"),
    "head_shape": ("round", "oval", "square", "wide"),
}
TRAIT_VALUES: dict[str, tuple[str, ...]] = {**{k: tuple(v) for k, v in COLOURS.items()}, **SHAPES}
MIN_TRAIT_DISTANCE = 3  # identities differ in at least this many traits (relaxed if impossible)


def _distance(a: Traits, b: Traits) -> int:
    return sum(a[key] != b[key] for key in TRAIT_VALUES)


def _random_traits(rng: np.random.Generator) -> Traits:
    return {key: str(values[rng.integers(len(values))]) for key, values in TRAIT_VALUES.items()}


def sample_identities(n: int, seed: int = 0) -> list[Traits]:
    """``n`` trait sets, pairwise at least ``MIN_TRAIT_DISTANCE`` traits apart where possible."""
    rng = np.random.default_rng([seed, 0])
    chosen: list[Traits] = []
    min_distance = MIN_TRAIT_DISTANCE
    while len(chosen) < n:
        for _ in range(2000):
            traits = _random_traits(rng)
            if all(_distance(traits, other) >= min_distance for other in chosen):
                chosen.append(traits)
                break
        else:
            min_distance -= 1  # the trait space is crowded: accept closer identities
            if min_distance < 1:
                raise ValueError(f"cannot draw {n} distinct identities from the trait space")
    return chosen


def tuple_rgb(values: Iterable[float]) -> Rgb:
    """Three numbers as an (r, g, b) tuple of ints (raises ValueError for another count)."""
    r, g, b = (int(v) for v in values)
    return r, g, b


def _shade(colour: Rgb, factor: float) -> Rgb:
    """Darker (factor < 1) or lighter (> 1, towards white) version of ``colour``."""
    r, g, b = colour
    if factor <= 1:
        return int(r * factor), int(g * factor), int(b * factor)
    return tuple_rgb(c + (255 - c) * (factor - 1) for c in colour)


def _shirt(traits: Traits, box: int, u: float) -> tuple[Image.Image, Image.Image]:
    """The torso's patterned fill and its mask, both ``box`` x ``box``."""
    colour = COLOURS["shirt_colour"][traits["shirt_colour"]]
    accent = _shade(colour, 0.55) if sum(colour) > 300 else _shade(colour, 1.6)
    fill = Image.new("RGB", (box, box), colour)
    draw = ImageDraw.Draw(fill)
    pattern, step = traits["shirt_pattern"], max(2, int(7 * u))
    for k in range(0, box, step):
        if pattern == "stripes":
            draw.rectangle((0, k, box, k + step // 2 - 1), fill=accent)
        elif pattern == "checks":
            for m in range((k // step) % 2 * step, box, 2 * step):
                draw.rectangle((m, k, m + step - 1, k + step - 1), fill=accent)
        elif pattern == "dots":
            for m in range((k // step) % 2 * step // 2, box, step):
                draw.ellipse((m, k, m + step * 0.45, k + step * 0.45), fill=accent)
    mask = Image.new("L", (box, box), 0)
    ImageDraw.Draw(mask).rounded_rectangle((20 * u, 64 * u, 80 * u, 112 * u), radius=int(12 * u), fill=255)
    return fill, mask


def draw_person(traits: Traits, box: int, expression: str = "neutral") -> Image.Image:
    """A ``box`` x ``box`` RGBA bust of a person with ``traits`` (transparent outside the figure).

    Drawn on a 100 x 100 design grid scaled to ``box`` pixels. ``expression`` is "neutral",
    "smile" or "open" (a per-photo variation, not a trait).
    """
    u = box / 100.0

    def at(*values: float) -> list[float]:  # design-grid coordinates -> pixels
        return [value * u for value in values]

    layer = Image.new("RGBA", (box, box), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    skin, hair = COLOURS["skin"][traits["skin"]], COLOURS["hair_colour"][traits["hair_colour"]]
    rx, ry = {"round": (17, 17), "oval": (14, 21), "square": (17, 18), "wide": (21, 15)}[traits["head_shape"]]
    cx, cy = 50.0, 38.0
    style = traits["hair_style"]
    if style == "long":  # behind the head and shoulders
        draw.rounded_rectangle(at(cx - rx - 4, cy - 4, cx + rx + 4, 70), radius=int(5 * u), fill=hair)
    fill, mask = _shirt(traits, box, u)
    layer.paste(fill, (0, 0), mask)
    draw.rectangle(at(cx - 6, cy + ry - 4, cx + 6, 66), fill=skin)  # neck
    if traits["head_shape"] == "square":
        draw.rounded_rectangle(at(cx - rx, cy - ry, cx + rx, cy + ry), radius=int(5 * u), fill=skin)
    else:
        draw.ellipse(at(cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    if style == "mohawk":
        draw.rounded_rectangle(at(cx - 4, cy - ry - 9, cx + 4, cy - ry * 0.4), radius=int(3 * u), fill=hair)
    else:
        draw.chord(at(cx - rx - 2, cy - ry - 3, cx + rx + 2, cy + ry * 0.6), 180, 360, fill=hair)
    if style == "spiky":
        for x in (cx + k * rx * 0.4 for k in range(-2, 3)):
            draw.polygon(at(x - 4, cy - ry + 2, x, cy - ry - 9, x + 4, cy - ry + 2), fill=hair)
    elif style == "bun":
        draw.ellipse(at(cx - 7, cy - ry - 13, cx + 7, cy - ry + 1), fill=hair)
    _draw_face(draw, at, traits, (cx, cy, rx, ry), expression)
    return layer


def _draw_face(
    draw: ImageDraw.ImageDraw,
    at: Callable[..., list[float]],
    traits: Traits,
    head: tuple[float, float, float, float],
    expression: str,
) -> None:
    """Eyes (shape, iris colour), glasses and mouth on the head ``(cx, cy, rx, ry)``."""
    cx, cy, rx, ry = head
    line = max(1, int(at(1.3)[0]))
    dark = (20, 20, 20)
    iris = COLOURS["eye_colour"][traits["eye_colour"]]
    (wx, wy), ir = {"round": ((3.5, 3.5), 2.3), "narrow": ((4.5, 1.9), 1.8), "big": ((5, 5), 3.4)}[traits["eye_shape"]]
    ey = cy + 0.12 * ry
    for ex in (cx - 0.42 * rx, cx + 0.42 * rx):
        draw.ellipse(at(ex - wx, ey - wy, ex + wx, ey + wy), fill=(250, 250, 250))
        draw.ellipse(at(ex - ir, ey - ir, ex + ir, ey + ir), fill=iris)
        draw.ellipse(at(ex - 0.8, ey - 0.8, ex + 0.8, ey + 0.8), fill=(0, 0, 0))
        if traits["glasses"] == "round":
            draw.ellipse(at(ex - 6, ey - 6, ex + 6, ey + 6), outline=dark, width=line)
        elif traits["glasses"] == "square":
            draw.rectangle(at(ex - 6, ey - 5, ex + 6, ey + 5), outline=dark, width=line)
    if traits["glasses"] != "none":
        draw.line(at(cx - 0.42 * rx + 6, ey, cx + 0.42 * rx - 6, ey), fill=dark, width=line)
    my = cy + 0.6 * ry
    lips = _shade(COLOURS["skin"][traits["skin"]], 0.6)
    if expression == "smile":
        draw.arc(at(cx - 6, my - 4, cx + 6, my + 3), 20, 160, fill=lips, width=line)
    elif expression == "open":
        draw.ellipse(at(cx - 3, my - 1.5, cx + 3, my + 2.5), fill=(90, 20, 20))
    else:
        draw.line(at(cx - 5, my, cx + 5, my), fill=lips, width=line)


def _pastel(rng: np.random.Generator) -> Rgb:
    return tuple_rgb(rng.integers(150, 256, size=3))


def _background(rng: np.random.Generator, side: int, plain: bool) -> Image.Image:
    """Solid, gradient, noisy or striped pastel background, ``side`` x ``side`` RGB."""
    colour = np.array(_pastel(rng), dtype=np.float32)
    kind = "solid" if plain else ("solid", "gradient", "noise", "stripes")[rng.integers(4)]
    pixels = np.broadcast_to(colour, (side, side, 3)).copy()
    if kind == "gradient":
        other = np.array(_pastel(rng), dtype=np.float32)
        ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
        pixels = pixels * (1 - ramp) + other * ramp  # (side, side, 3)
        if rng.random() < 0.5:
            pixels = pixels.transpose(1, 0, 2)
    elif kind == "noise":
        pixels = pixels + rng.normal(0.0, 18.0, size=(side, side, 1)).astype(np.float32)
    elif kind == "stripes":
        period = int(rng.integers(side // 16, side // 5))
        band = (np.add.outer(np.arange(side), np.arange(side)) // period) % 2 == 1
        pixels[band] *= 0.82
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _random_shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int, max_frac: float) -> None:
    size = rng.uniform(0.08, max_frac) * side
    x, y = rng.uniform(-0.1, 1.0, size=2) * side
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse((x, y, x + size, y + size * rng.uniform(0.5, 1.5)), fill=colour)
    elif kind == 1:
        draw.rectangle((x, y, x + size, y + size * rng.uniform(0.3, 1.2)), fill=colour)
    else:
        draw.polygon([(x, y + size), (x + size / 2, y), (x + size, y + size)], fill=colour)


def _paste_person(canvas: Image.Image, person: Image.Image, x: float, y: float, angle: float, mirror: bool) -> None:
    if mirror:
        person = person.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle:
        person = person.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    canvas.paste(person, (int(x - person.width / 2), int(y - person.height / 2)), person)


def render_photo(
    traits: Traits, identities: list[Traits], rng: np.random.Generator, size: int, reference: bool = False
) -> tuple[Image.Image, dict[str, Any]]:
    """One ``size`` x ``size`` RGB photo of the person with ``traits``, and how it was varied.

    ``reference`` gives the enrolment portrait: centred, upright, plain background, nothing else.
    Other photos vary layout and may show a stranger who differs from every one of ``identities``
    in at least two traits. Drawn at twice the size and box-downsampled (anti-aliasing).
    """
    side = 2 * size
    canvas = _background(rng, side, plain=reference)
    draw = ImageDraw.Draw(canvas)
    if reference:
        box, x, y, angle, mirror, expression = int(side * 0.95), side / 2, side / 2 + side * 0.05, 0.0, False, "neutral"
        meta: dict[str, Any] = {"reference": True}
    else:
        for _ in range(int(rng.integers(0, 4))):
            _random_shape(draw, rng, side, 0.35)
        scale = float(rng.uniform(0.55, 0.95))
        box = int(side * scale)
        x, y = float(rng.uniform(0.3, 0.7) * side), float(side - box / 2 + rng.uniform(-0.15, 0.1) * side)
        angle, mirror = float(rng.uniform(-15, 15)), bool(rng.random() < 0.5)
        expression = ("neutral", "smile", "open")[int(rng.integers(3))]
        stranger = _stranger(identities, rng) if rng.random() < 0.3 else None
        if stranger:
            other_x = rng.choice([-0.05, 1.05]) * side
            _paste_person(
                canvas,
                draw_person(stranger, int(side * rng.uniform(0.5, 0.9))),
                other_x,
                side * rng.uniform(0.45, 0.75),
                float(rng.uniform(-15, 15)),
                False,
            )
        meta = {
            "scale": round(scale, 3),
            "angle": round(angle, 1),
            "mirror": mirror,
            "expression": expression,
            "stranger": stranger,
        }
    _paste_person(canvas, draw_person(traits, box, expression), x, y, angle, mirror)
    if not reference and rng.random() < 0.3:
        _random_shape(ImageDraw.Draw(canvas), rng, side, 0.18)  # a small occluder in front
    return canvas.reduce(2), meta


def _stranger(identities: list[Traits], rng: np.random.Generator) -> Traits | None:
    for _ in range(50):
        traits = _random_traits(rng)
        if all(_distance(traits, other) >= 2 for other in identities):
            return traits
    return None


def make_toy_identities(out: Path, n_identities: int, n_queries: int, seed: int = 0, size: int = 112) -> Path:
    """Write a recognition dataset: ``out/id_000/ref_img.png``, ``out/id_000/query_img_00.png``, ...

    Also writes ``out/toy.json`` with the generator settings, every identity's traits, the trait
    vocabulary with RGB colours, and each photo's variation. Returns ``out``.

    Raises:
        FileExistsError: ``out`` exists and is not empty (nothing is overwritten).
        ValueError: fewer than one identity or query, or ``size`` < 32.
    """
    out = Path(out)
    if n_identities < 1 or n_queries < 1 or size < 32:
        raise ValueError(f"need n_identities >= 1, n_queries >= 1, size >= 32; got {n_identities}, {n_queries}, {size}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder for the toy dataset")
    identities = sample_identities(n_identities, seed)
    id_width, q_width = max(3, len(str(n_identities - 1))), max(2, len(str(n_queries - 1)))
    names = [f"id_{i:0{id_width}d}" for i in range(n_identities)]
    photos: dict[str, Any] = {}
    for i, (name, traits) in enumerate(zip(names, identities, strict=True)):
        (out / name).mkdir(parents=True, exist_ok=True)
        for j in range(-1, n_queries):
            file = "ref_img.png" if j < 0 else f"query_img_{j:0{q_width}d}.png"
            image, meta = render_photo(traits, identities, np.random.default_rng([seed, 1, i, j + 1]), size, j < 0)
            image.save(out / name / file, format="PNG", compress_level=1)
            photos[f"{name}/{file}"] = meta
    manifest = {
        "generator": "pipeline.datasets.toy",
        "seed": seed,
        "size": size,
        "n_identities": n_identities,
        "n_queries": n_queries,
        "trait_values": {key: list(values) for key, values in TRAIT_VALUES.items()},
        "colours": {key: {name: list(rgb) for name, rgb in table.items()} for key, table in COLOURS.items()},
        "identities": dict(zip(names, identities, strict=True)),
        "photos": photos,
    }
    (out / "toy.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out


QUESTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "shirt_colour": ("What colour is <sks>'s shirt?", {}),
    "hair_colour": ("What colour is <sks>'s hair?", {}),
    "eye_colour": ("What colour are <sks>'s eyes?", {}),
    "glasses": (
        "Does <sks> wear glasses, and which kind?",
        {"none": "no glasses", "round": "round glasses", "square": "square glasses"},
    ),
    "shirt_pattern": ("What pattern is on <sks>'s shirt?", {}),
    "hair_style": ("What is <sks>'s hairstyle?", {}),
}


def make_toy_vqa(root: Path, per_identity: int = 4, seed: int = 0, n_options: int = 4) -> Path:
    """Write ``root/vqa.json``: multiple-choice questions about each toy identity's traits.

    Reads ``root/toy.json`` (from :func:`make_toy_identities`). Questions alternate between visual
    (with one of the identity's query photos) and text-only (reference only); options are the
    true trait value plus up to ``n_options - 1`` other values of the same trait, keys "A", "B", ...;
    ``correct_answer`` is a key; each item also names its ``identity`` and ``trait`` (extra keys).
    ``per_identity`` is capped at the number of question topics (6). Paths are relative to
    ``root``. Overwrites ``root/vqa.json``; returns its path.
    """
    root = Path(root)
    manifest = json.loads((root / "toy.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng([seed, 2])
    items: list[dict[str, Any]] = []
    for name, traits in manifest["identities"].items():
        queries = sorted(path for path in manifest["photos"] if path.startswith(f"{name}/query_img"))
        topics = [str(t) for t in rng.permutation(list(QUESTIONS))][:per_identity]
        for k, trait in enumerate(topics):
            question, wording = QUESTIONS[trait]
            others = [v for v in TRAIT_VALUES[trait] if v != traits[trait]]
            picked = [traits[trait], *(str(v) for v in rng.permutation(others)[: n_options - 1])]
            order = rng.permutation(len(picked))
            keys = [chr(ord("A") + m) for m in range(len(picked))]
            options = {key: wording.get(picked[m], picked[m]) for key, m in zip(keys, order, strict=True)}
            correct = keys[int(np.flatnonzero(order == 0)[0])]
            item: dict[str, Any] = {
                "ref_img": f"{name}/ref_img.png",
                "question": question,
                "multiple_choice": options,
                "correct_answer": correct,
                "identity": name,
                "trait": trait,
            }
            if k % 2 == 0:
                item["query_img"] = queries[int(rng.integers(len(queries)))]
            items.append(item)
    path = root / "vqa.json"
    path.write_text(json.dumps(items, indent=1), encoding="utf-8")
    return path
