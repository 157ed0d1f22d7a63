"""Scene prompts for the synthetic-data step (``pipeline synth``).

The personalization papers build their training pairs by generating new images of each identity "in new scenes"
with IP-Adapter: the face image fixes who is in the picture, the text prompt decides where they are,
what they do and wear, and the light. :data:`DEFAULT_PROMPTS` spreads over those four axes so that a
recognition model trained on the pairs cannot shortcut on background, pose, clothes or lighting:

* places: outdoors (mountains, beach, city, forest, snow, desert) and indoors (kitchen, office,
  library, cafe, museum, gym);
* activities: hiking, cycling, cooking, reading, dancing, playing guitar, skiing, painting...;
* clothes: suits, raincoats, sweaters, sportswear, formal dress, winter gear;
* light and framing: golden hour, night neon, overcast, candle light, studio, close-up vs. full body.

Every prompt names "a person" (no gender, age or ethnicity words) so that the face image, not the
text, carries the identity. :data:`DEFAULT_NEGATIVE_PROMPT` pushes away the usual SD 1.5 failure
modes (extra faces, deformed hands, text and watermarks, cartoon renderings).

A prompt file for :func:`load_prompts` is plain UTF-8 text, one prompt per line; blank lines and
lines starting with ``#`` are ignored.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_PROMPTS: tuple[str, ...] = (
    "a photo of a person hiking in the mountains, wearing a backpack, sunny day",
    "a photo of a person walking on a sandy beach at sunset, golden hour light",
    "a photo of a person cooking in a bright home kitchen, wearing an apron",
    "a photo of a person reading a book in a quiet library, soft window light",
    "a photo of a person riding a bicycle on a city street, motion, daytime",
    "a photo of a person in a business suit in a modern office, working on a laptop",
    "a photo of a person drinking coffee at a cafe table, shallow depth of field",
    "a photo of a person skiing on a snowy slope, wearing a winter jacket and goggles pushed up",
    "a photo of a person walking a dog in a park in autumn, fallen leaves",
    "a photo of a person playing an acoustic guitar on a stage, warm spotlight",
    "a photo of a person in a raincoat holding an umbrella on a rainy street at night, neon reflections",
    "a photo of a person at a birthday party, colorful balloons, indoor flash photo",
    "a photo of a person jogging along a river in the morning, wearing sportswear",
    "a photo of a person painting on a canvas in an art studio",
    "a photo of a person looking at paintings in a museum gallery",
    "a photo of a person sitting by a campfire in a forest at night, firelight on the face",
    "a photo of a person in a cozy knitted sweater at home on a sofa, evening lamp light",
    "a photo of a person shopping at an outdoor farmers market, overcast day",
    "a photo of a person lifting weights in a gym, fluorescent lighting",
    "a photo of a person in formal evening wear at a wedding reception",
    "a photo of a person standing in a desert with sand dunes, harsh midday sun",
    "a photo of a person on a sailing boat on the sea, wind in the hair",
    "a photo of a person taking a selfie in front of a famous city landmark",
    "a photo of a person gardening in a backyard, wearing a sun hat",
    "a photo of a person having dinner at a restaurant, candle light",
    "a photo of a person waiting at a train station platform, wearing a coat and scarf",
    "a photo of a person dancing at a concert, colorful stage lights",
    "a close-up portrait photo of a person outdoors, natural light, bokeh background",
    "a full-body photo of a person standing on a snowy mountain summit, blue sky",
    "a photo of a person working at a desk at night, lit by a computer screen",
    "a black and white photo of a person laughing in a city street",
    "a photo of a person fishing on a lake at dawn, misty water",
)
"""Default scene prompts (32): varied places, activities, clothes, lighting and framing."""

DEFAULT_NEGATIVE_PROMPT = (
    "multiple people, extra faces, deformed face, disfigured, bad anatomy, extra limbs, deformed hands, "
    "blurry, low quality, lowres, jpeg artifacts, watermark, text, signature, cartoon, drawing, anime, 3d render"
)
"""Default negative prompt: SD 1.5's usual failure modes (extra faces, anatomy, artifacts, non-photos)."""


def load_prompts(path: str | Path | None = None) -> list[str]:
    """The prompt list: :data:`DEFAULT_PROMPTS` when ``path`` is None, else the file's prompts.

    The file is UTF-8 text with one prompt per line; surrounding whitespace is stripped, blank
    lines and ``#`` comment lines are skipped, order is kept (duplicates too).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file holds no prompt.
    """
    if path is None:
        return list(DEFAULT_PROMPTS)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    prompts = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            prompts.append(line)
    if not prompts:
        raise ValueError(f"prompt file {path} holds no prompt (one per line; '#' lines are comments)")
    return prompts
