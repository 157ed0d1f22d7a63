"""Aligner training: rows and loss masking, resume, checkpoints, a short run that learns, the GPU
bench's CPU dry run. Offline, CPU."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.plvm.checkpoint import describe_checkpoint, load_aligner
from pipeline.plvm.prompts import RECOGNITION_QUESTION, prompt_segments
from pipeline.plvm.training.data import NO_ANSWER, YES_ANSWER, ExampleSampler, split_identities
from pipeline.plvm.training.forward import AnswerLogits
from pipeline.plvm.training.loss import weighted_answer_loss, yes_no_correct
from pipeline.plvm.training.rows import IGNORE, RowBuilder
from pipeline.plvm.training.schedule import lr_factor

ROOT = Path(__file__).resolve().parents[2]
STEPS = 240  # the short learning run (batch 16; ~40 s on 2 idle cores)


# --- data and rows ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.datasets.toy import make_toy_identities

    return make_toy_identities(tmp_path_factory.mktemp("toy") / "ids", 6, 4, seed=1, size=64)


def test_split_keeps_held_out_data_apart(toy_ids):
    split = split_identities(toy_ids, 0.34, None, 0.25, seed=0)
    assert len(split.unseen) == 2 and len(split.train) == 4 and len(split.seen) == 4
    held = split.held_out_queries
    for ident in split.train:
        assert len(ident.queries) == 3 and not {q.resolve() for q in ident.queries} & held
    named = split_identities(toy_ids, 0.0, ["id_000"], 0.0, seed=0)
    assert [i.name for i in named.unseen] == ["id_000"] and named.seen == []
    with pytest.raises(ValueError, match="not in"):
        split_identities(toy_ids, 0.0, ["nobody"], 0.0, seed=0)


def test_sampler_balances_positives_and_negatives(toy_ids):
    split = split_identities(toy_ids, 0.0, None, 0.0, seed=0)
    owner = {q: i.name for i in split.train for q in i.queries}
    refs = {i.reference: i.name for i in split.train}
    examples = ExampleSampler(split.train, rng=np.random.default_rng(0)).sample(10)
    assert sum(e.positive for e in examples) == 5
    for e in examples:
        assert (owner[e.query] == refs[e.reference]) == e.positive
        assert e.answer == (YES_ANSWER if e.positive else NO_ANSWER) and "<sks>" in e.question
    assert len({e.question for e in ExampleSampler(split.train, rng=np.random.default_rng(0)).sample(40)}) > 1
    plain = ExampleSampler(split.train, rng=np.random.default_rng(0), paraphrase_fraction=0.0).sample(40)
    assert {e.question for e in plain} == {RECOGNITION_QUESTION}


def test_unreadable_images_are_skipped_and_listed(toy_ids, tmp_path):
    import shutil

    data = Path(shutil.copytree(toy_ids, tmp_path / "ids"))
    (data / "id_000" / "query_img_00.png").write_bytes(b"\x89PNG broken")
    (data / "id_001" / "ref_img.png").write_bytes(b"not an image")  # its only reference
    (data / "id_002" / "ref_img0.png").write_bytes(b"not an image")  # a second reference: ref_img.png stays
    split = split_identities(data, 0.0, None, 0.0, seed=0, max_pixels=10**8)
    names = [i.name for i in split.train]
    assert "id_001" not in names and len(names) == 5
    id_000 = next(i for i in split.train if i.name == "id_000")
    assert len(id_000.queries) == 3 and all(q.name != "query_img_00.png" for q in id_000.queries)
    assert next(i for i in split.train if i.name == "id_002").reference.name == "ref_img.png"
    skipped = "\n".join(split.skipped)
    assert "id_000/query_img_00.png" in skipped and "id_001/ref_img.png" in skipped
    assert "id_002/ref_img0.png" in skipped and "id_001: no readable reference" in skipped
    assert split.summary()["skipped_images"] == split.skipped and len(split.unreadable) == 3
    assert len(split_identities(data, 0.0, None, 0.0, seed=0).train) == 6  # no check without max_pixels


def test_qa_items_become_training_items_without_held_out_data(toy_ids):
    from pipeline.datasets.toy import make_toy_vqa
    from pipeline.plvm.training.data import load_qa_examples

    path = make_toy_vqa(toy_ids, per_identity=4, seed=0)
    items = json.loads(path.read_text())
    split = split_identities(toy_ids, 0.34, None, 0.25, seed=0)
    examples = load_qa_examples(path, toy_ids, split)
    held = split.held_out_queries
    unseen = {i.name for i in split.unseen}
    assert examples and len(examples) < len(items)
    for e in examples:
        assert e.kind == "qa" and "<sks>" in e.question and e.reference.parent.name not in unseen
        assert e.query is None or e.query.resolve() not in held
    kept = [
        i
        for i in items
        if i["ref_img"].split("/")[0] not in unseen
        and ("query_img" not in i or (toy_ids / i["query_img"]).resolve() not in held)
    ]
    assert [e.answer for e in examples] == [i["multiple_choice"][i["correct_answer"]] for i in kept]
    sampler = ExampleSampler(split.train, examples, np.random.default_rng(0), qa_fraction=0.5)
    batch = sampler.sample(40)
    assert 5 < sum(e.kind == "qa" for e in batch) < 35


@pytest.fixture(scope="module")
def lvlm(tiny_bundle):
    from pipeline.plvm.engine import PlvmEngine, tiny_sources

    return PlvmEngine(tiny_sources(tiny_bundle), device="cpu", dtype="float32").load_lvlm()


def test_rows_use_the_inference_prompt_and_label_only_the_answer(lvlm):
    builder = RowBuilder(lvlm, n_soft=16, name="sks")
    row = builder.row("Is <sks> in this photo?", YES_ANSWER, with_image=True)
    # the prompt part is exactly what inference encodes for the same question and person
    prompt_ids, _ = lvlm.encode_segments(prompt_segments("Is <sks> in this photo?", ["sks"]))
    assert list(row.ids[: row.n_prompt]) == prompt_ids
    assert row.ids[row.n_prompt] == lvlm.yes_id and row.ids[-1] == lvlm.tokenizer.eos_token_id
    assert builder.ids.concept in row.ids[row.n_prompt :]  # the answer names the person with the token

    no_row = builder.row("Is <sks> in this photo?", NO_ANSWER, True)
    batch = builder.collate([row, no_row], 3.0, 1.0, torch.device("cpu"))
    for i, (r, first) in enumerate([(row, lvlm.yes_id), (no_row, lvlm.no_id)]):
        offset = batch.input_ids.shape[1] - len(r.ids)
        start = offset + r.n_prompt - 1  # the position that predicts the first answer token
        targets, weights = batch.targets[i], batch.weights[i]
        assert (targets[:start] == IGNORE).all() and (weights[:start] == 0).all()  # prompt + padding masked
        assert (targets[start:-1] != IGNORE).all() and targets[start] == first and targets[-1] == IGNORE
        assert targets[-2] == lvlm.tokenizer.eos_token_id  # the answer ends with EOS
        assert int(batch.first_answer[i]) == start
        assert weights[start] == 3.0 and (weights[start + 1 : -1] == 1.0).all()  # yes/no weight on Yes/No only
        assert (targets == builder.base_vocab).sum() == 1  # the answer's concept token -> the appended column
    # concept (system, question, answer) and soft positions are marked for the Aligner's tokens
    assert (batch.slots == 0).sum() == 2 * 3 and (batch.slots >= 1).sum() == 2 * 16


def test_loss_ignores_prompt_tokens_and_weights_yes_no():
    torch.manual_seed(0)
    logits = torch.randn(4, 11)
    targets = torch.tensor([3, 5, 7, 10])
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    out = AnswerLogits(
        logits,
        targets,
        torch.tensor([3.0, 1.0, 1.0, 1.0]),
        torch.zeros(4, dtype=torch.long),
        torch.tensor([True, False, False, False]),
    )
    expected = (3 * ce[0] + ce[1:].sum()) / 6
    torch.testing.assert_close(weighted_answer_loss(out), expected)
    assert yes_no_correct(out, yes_id=3, no_id=5) == (int(logits[0, 3] > logits[0, 5]), 1)


def test_forward_reaches_the_aligner_outputs_only(lvlm):
    """Gradients reach the Aligner's tokens and lm_weight, never the frozen model's weights."""
    from pipeline.plvm.training.forward import answer_logits

    builder = RowBuilder(lvlm, n_soft=16, name="sks")
    rows = [
        builder.row("Is <sks> in this photo?", YES_ANSWER, False),
        builder.row("Who is <sks>?", "<sks> is here.", False),
    ]
    batch = builder.collate(rows, 3.0, 1.0, torch.device("cpu"))
    tokens = torch.randn(2, 17, lvlm.hidden_size, requires_grad=True)
    lm_weight = torch.randn(2, lvlm.hidden_size, requires_grad=True)
    out = answer_logits(lvlm, batch, tokens, lm_weight, [None, None])
    assert out.logits.shape == (int((batch.targets != IGNORE).sum()), builder.base_vocab + 1)
    loss = weighted_answer_loss(out)
    loss.backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0 and lm_weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in lvlm.model.parameters())
    # the appended column is the concept token's logit: final hidden state @ lm_weight
    with torch.no_grad():
        scaled = answer_logits(lvlm, batch, tokens, 2 * lm_weight, [None, None])
    torch.testing.assert_close(scaled.logits[:, :-1], out.logits[:, :-1].detach())
    torch.testing.assert_close(scaled.logits[:, -1], 2 * out.logits[:, -1].detach(), rtol=1e-4, atol=1e-4)


def test_config_rejects_unknown_precision_and_decay_before_loading_models(tmp_path):
    from pipeline.plvm.train import TrainConfig

    with pytest.raises(ValueError, match="precision must be one of auto, no, fp16, bf16"):
        TrainConfig(data_dir=tmp_path, out=tmp_path / "a.ckpt", precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'step'"):
        TrainConfig(data_dir=tmp_path, out=tmp_path / "a.ckpt", decay="step")  # type: ignore[arg-type]


def test_lr_schedule_warms_up_then_decays():
    f = [lr_factor(s, warmup=4, total=20) for s in range(1, 21)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0] and f[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[3:], f[4:], strict=False))
    assert lr_factor(12, 4, 20, "linear") == pytest.approx(0.5)


# --- training runs -----------------------------------------------------------------------------


def _settings(bundle: Path, tmp: Path):
    from pipeline.config import Settings

    return Settings(profile="tiny", tiny_bundle=bundle, device="cpu", dtype="float32", data_dir=tmp)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(toy identities, the demo's trainable random bundle), as bench/train_toy.py uses them, smaller."""
    from pipeline.datasets.toy import make_toy_identities, make_toy_vqa
    from pipeline.plvm.training.toy import write_toy_bundle

    root = tmp_path_factory.mktemp("learn")
    data = make_toy_identities(root / "ids", 6, 12, seed=0, size=64)
    make_toy_vqa(data, per_identity=3, seed=0)  # data/vqa.json, release format (files at the root are ignored)
    return data, write_toy_bundle(root / "bundle")


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same 6 toy people with 60 photos each (a second or two to draw). With 12, the Aligner fits
    the 9 training photos per person well before it recognises held-out ones, and 3 held-out
    photos per person make a noisy measure."""
    from pipeline.datasets.toy import make_toy_identities

    return make_toy_identities(tmp_path_factory.mktemp("many") / "ids", 6, 60, seed=0, size=64)


def _config(data: Path, out: Path, **overrides):
    from pipeline.plvm.train import TrainConfig
    from pipeline.plvm.training.toy import TOY_ALIGNER

    base = dict(
        data_dir=data,
        out=out,
        batch_size=8,
        lr=4e-3,
        warmup_steps=2,
        held_out_identities=0.0,
        held_out_query_fraction=0.0,
        aligner_sizes=TOY_ALIGNER,
        other_weight=0.1,
        progress=False,
        final_eval=False,
    )
    return TrainConfig(**{**base, **overrides})


def test_resume_continues_exactly(learnable, tmp_path):
    from pipeline.plvm.train import train_aligner

    data, bundle = learnable
    settings = _settings(bundle, tmp_path)
    straight = train_aligner(_config(data, tmp_path / "a" / "aligner.ckpt", steps=10), settings)
    first = train_aligner(_config(data, tmp_path / "b" / "aligner.ckpt", steps=10, stop_after=5), settings)
    assert (first.first_step, first.last_step) == (1, 5)
    second = train_aligner(_config(data, tmp_path / "b" / "aligner.ckpt", steps=10, resume=True), settings)
    assert (second.first_step, second.last_step) == (6, 10)
    assert second.lrs == pytest.approx(straight.lrs)  # the schedule continues where it stopped
    assert second.losses == pytest.approx(straight.losses, rel=1e-4, abs=1e-5)
    a = load_aligner(tmp_path / "a" / "aligner.ckpt").state_dict()
    b = load_aligner(tmp_path / "b" / "aligner.ckpt").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.fixture
def one_thread():
    """torch on one thread for this test: the same figures on any machine (float sums do not depend
    on how many threads split them) and no oversubscription when the 2 cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(900)  # ~40-60 s alone; once over 300 s with the 2 cores shared by 9 processes
def test_short_training_learns_and_saves_a_loadable_checkpoint(learnable, many_photos, tmp_path, one_thread):
    """The toy proof (bench/train_toy.py), shorter: 6 people, 42 training photos each, 18 held out.

    The bench's recipe plus four TrainConfig options that make a short run against the random
    LVLM learn fast: the yes/no token is the only target (other_weight 0: the answer's wording is
    slow to learn for a random LVLM and competes with recognition), the question is always the
    inference one (paraphrases are just other token layouts to it), tokens start at 4x the
    embedding spread, and AdamW forgets the first steps' large gradients quickly (beta2 0.95).
    Each of these measurably speeds up learning.
    """
    from pipeline.evaluation.recognition import evaluate_recognition
    from pipeline.plvm.checkpoint import file_sha256
    from pipeline.plvm.engine import PlvmEngine, tiny_sources
    from pipeline.plvm.train import train_aligner

    _, bundle = learnable
    data = many_photos
    out = tmp_path / "ckpt" / "aligner.ckpt"
    config = _config(
        data,
        out,
        steps=STEPS,
        batch_size=16,
        lr=6e-3,
        warmup_steps=20,
        other_weight=0.0,
        paraphrase_fraction=0.0,
        init_token_scale=4.0,
        adam_beta2=0.95,
        held_out_query_fraction=0.3,
        final_eval=True,
        save_every=STEPS // 2,
    )
    settings = _settings(bundle, tmp_path)
    result = train_aligner(config, settings, evaluator=partial(evaluate_recognition, settings))
    losses = np.array(result.losses)
    k = len(losses) // 5
    assert losses[-k:].mean() < 0.7 * losses[:k].mean(), losses
    seen = result.final_eval("seen")
    assert seen is not None and seen.n_identities == 6 and seen.n_queries == 6 * 18
    # chance is 0.5; measured 0.862 weighted / 0.921 AUC (the same with 1 thread); seeds 1-4 (data and
    # run): 0.753-0.873 / 0.833-0.935. bench/train_toy.py: over 0.9 after 1,500 steps of 16 people
    assert seen.weighted_accuracy >= 0.65 and seen.auc >= 0.7, seen

    info = describe_checkpoint(out)  # what `pipeline models verify-aligner` prints; strict load
    assert info["config_source"] == "sidecar" and info["config"]["out_dim"] == 256
    aligner = load_aligner(out)  # the plvm profile's loader, unchanged
    assert aligner.config.n_queries == 17
    state = torch.load(out.with_name(out.name + ".train-state.pt"), weights_only=True)
    assert state["step"] == STEPS and "optimizer" in state and len(state["history"]["losses"]) == STEPS
    # the engine loads the checkpoint like any other
    engine = PlvmEngine(replace(tiny_sources(bundle), aligner=out), device="cpu", dtype="float32")
    concept = engine.encode_references([Image.open(data / "id_000" / "ref_img.png")])
    assert concept.tokens.shape == (17, 256) and engine.model_version.endswith(
        f"aligner-{file_sha256(out)[:8]}+pos-release"
    )


def test_cli_train_registers_and_runs(learnable, tmp_path, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    import pipeline.cli.train  # noqa: F401  (registers `train` on the app)
    from pipeline.cli.app import app
    from pipeline.config import get_settings

    data, bundle = learnable
    data = Path(shutil.copytree(data, tmp_path / "data"))  # with one corrupt photo
    (data / "id_003" / "query_img_01.png").write_bytes(b"\x89PNG truncated")
    monkeypatch.setenv("PIPELINE_PROFILE", "tiny")
    monkeypatch.setenv("PIPELINE_TINY_BUNDLE", str(bundle))
    monkeypatch.setenv("PIPELINE_DEVICE", "cpu")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "dd"))
    get_settings.cache_clear()
    out = tmp_path / "cli" / "aligner.ckpt"
    report = tmp_path / "cli" / "report.json"
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--held-out-identities",
        "0.34",
        "--held-out-queries",
        "0.2",
        "--aligner-sizes",
        json.dumps({"depth": 1}),
        "--qa",
        str(data / "vqa.json"),
        "--report",
        str(report),
        "--paraphrase-fraction",
        "0",
        "--init-token-scale",
        "4",
        "--adam-beta2",
        "0.95",
    ]
    result = CliRunner().invoke(app, args)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert out.is_file() and "checkpoint" in result.output
    assert "skipped:" in result.output and "id_003/query_img_01.png" in result.output.replace("\n", "")
    figures = json.loads(report.read_text())
    assert figures["last_step"] == 3 and len(figures["losses"]) == 3
    assert {e["split"] for e in figures["evals"]} == {"seen", "unseen"}
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in figures["losses"])
    used = torch.load(out.with_name(out.name + ".train-state.pt"), weights_only=True)["config"]
    assert (used["paraphrase_fraction"], used["init_token_scale"], used["adam_beta2"]) == (0.0, 4.0, 0.95)


def test_cli_train_refuses_a_profile_without_trainable_models(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import pipeline.cli.train  # noqa: F401  (registers `train` on the app)
    from pipeline.cli.app import app
    from pipeline.config import get_settings

    monkeypatch.setenv("PIPELINE_PROFILE", "faces")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "dd"))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "a.ckpt")])
    get_settings.cache_clear()
    assert result.exit_code == 1 and "needs the plvm profile" in str(result.exception), result
    assert not (tmp_path / "a.ckpt").exists()


def test_gpu_bench_parses_and_dry_runs_on_cpu(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "bench" / "gpu_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(["--help"])
    assert exit_info.value.code == 0 and "--dry-run-cpu-tiny" in capsys.readouterr().out
    figures = module.main(
        [
            "--dry-run-cpu-tiny",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--warmup-steps",
            "1",
            "--identities",
            "4",
            "--queries",
            "2",
            "--quiet",
        ]
    )
    assert figures["steps_timed"] == 3 and figures["tokens_per_s"] > 0 and figures["peak_gpu_memory_gib"] is None
