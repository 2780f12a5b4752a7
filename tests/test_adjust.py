# ultralytics-weighted, AGPL-3.0 license
"""Correcting the class prior: priors in balanced checkpoints, `adjust`, `balance_tau`, export of corrected models."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from conftest import plain, run

import ultralytics_weighted  # noqa: F401  (explicit activation; the startup hook does the same)
from ultralytics_weighted.commands.synthetic import make_classification_dataset
from ultralytics_weighted.extensions.schedule import BalanceSchedule
from ultralytics_weighted.extensions.shares import balance_stats
from ultralytics_weighted.host.priors import (
    PRIORS_ATTRIBUTE,
    TrainedPriors,
    class_logit_layers,
    correct_class_prior,
    prior_offsets,
)

COUNTS = {"common": 30, "medium": 8, "rare": 3}
ADJUST = [sys.executable, "-m", "ultralytics_weighted.commands.cli", "adjust"]
FP16_STEP = dict(rtol=2**-10, atol=0)  # one fp16 rounding step: correcting twice rounds twice


def fp16(x: np.ndarray) -> np.ndarray:
    """Round to fp16, as checkpoints hold their weights: the corrected bias is original + delta rounded once."""
    return np.asarray(x).astype(np.float16).astype(np.float64)


def load(path):
    from ultralytics.utils.patches import torch_load

    checkpoint = torch_load(path, map_location="cpu")
    return checkpoint.get("ema") or checkpoint["model"]


def biases(model) -> list[np.ndarray]:
    return [layer.bias.detach().double().numpy() for layer in class_logit_layers(model)]


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    """yolo11n-cls trained 1 epoch balanced with balance_tau=1 through model.train(): the run's weights folder."""
    from ultralytics import YOLO as Model

    root = tmp_path_factory.mktemp("cls")
    data = make_classification_dataset(root / "data", COUNTS)
    model = Model("yolo11n-cls.yaml")
    train = dict(epochs=1, imgsz=32, device="cpu", plots=False, workers=0, seed=0, verbose=False)
    model.train(data=str(data), class_balance=True, balance_tau=1, **train, project=str(root / "runs"), name="run")
    return model.trainer


@pytest.fixture(scope="module")
def detect_run(datasets, tmp_path_factory):
    """yolo11n trained 1 epoch balanced with balance_tau=1 through the stock `yolo` CLI: the weights folder and log."""
    from conftest import yolo_train

    root = tmp_path_factory.mktemp("det")
    out = yolo_train(datasets("detect"), root / "runs", "class_balance=True", "balance_tau=1", "workers=0")
    assert out.returncode == 0, out.stdout[-3000:]
    return root / "runs" / "run" / "weights", plain(out.stdout)


def test_balanced_checkpoints_carry_the_priors_as_plain_data(classify_run):
    dataset = classify_run.train_loader.dataset
    stats = balance_stats(dataset.balance_schedule.classes, len(COUNTS), dataset.balanced_probabilities)
    for name in ("last.pt", "best.pt"):
        priors = getattr(load(classify_run.wdir / name), PRIORS_ATTRIBUTE)
        assert json.loads(json.dumps(priors)) == priors  # lists, floats, str: no numpy, no plugin class
        assert priors["names"] == list(COUNTS) and priors["epochs"] == 1 and priors["tau"] == 0.0
        np.testing.assert_allclose(priors["share_before"], np.array(list(COUNTS.values())) / sum(COUNTS.values()))
        np.testing.assert_allclose(priors["share_trained"], stats["share_after"])
        assert priors["settings"] == "class_balance=1 balance_agg=mean"


def test_stock_ultralytics_without_the_plugin_loads_and_runs_a_corrected_model(classify_run, tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from ultralytics import YOLO\n"
        f"model = YOLO({str(classify_run.wdir / 'best-tau1.pt')!r})\n"
        "result = model.predict(np.zeros((32, 32, 3), np.uint8), imgsz=32, device='cpu', verbose=False)[0]\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'ultralytics_weighted'], 'the plugin is loaded'\n"
        "print('tau', model.model.balance_priors['tau'], 'top1', result.probs.top1)\n"
    )
    out = run([sys.executable, "-c", script], cwd=tmp_path, env={"ULTRALYTICS_WEIGHTED_HOOK": "0"})
    assert out.returncode == 0 and "tau 1.0 top1" in out.stdout, out.stdout[-2000:]


def test_priors_of_a_resumed_training_are_those_of_an_uninterrupted_one():
    labels = [np.array([0])] * 6 + [np.array([1, 1])] * 2 + [np.array([2])]
    schedule = BalanceSchedule(labels, nc=3, strength=1.0, floor=0.5, ramp=0.5, epochs=5)
    uninterrupted = TrainedPriors(schedule)
    for epochs in range(1, 5):  # one record per epoch, as the trainer saves
        uninterrupted.share_trained(epochs)
    resumed = TrainedPriors(BalanceSchedule(labels, nc=3, strength=1.0, floor=0.5, ramp=0.5, epochs=5))
    np.testing.assert_array_equal(resumed.share_trained(4), uninterrupted.share_trained(4))
    per_epoch = [balance_stats(labels, 3, schedule.probabilities(e))["share_after"] for e in range(4)]
    np.testing.assert_allclose(resumed.share_trained(4), np.mean(per_epoch, axis=0))
    assert not np.allclose(resumed.share_trained(4), resumed.share_trained(1))  # the ramp counts


def test_balance_tau_in_model_train_writes_the_corrected_best(classify_run):
    best, corrected = load(classify_run.wdir / "best.pt"), load(classify_run.wdir / "best-tau1.pt")
    priors = getattr(best, PRIORS_ATTRIBUTE)
    delta = prior_offsets(priors["share_before"], priors["share_realized"], 1.0)
    assert delta[0] > 0 > delta[2]  # the common class gains, the rare one loses
    (before,), (after,) = biases(best), biases(corrected)
    np.testing.assert_array_equal(after, fp16(before + delta))
    assert getattr(corrected, PRIORS_ATTRIBUTE)["tau"] == 1.0


def test_balance_tau_in_the_yolo_cli_writes_the_corrected_best(detect_run):
    weights, log = detect_run
    best, corrected = load(weights / "best.pt"), load(weights / "best-tau1.pt")
    priors = getattr(best, PRIORS_ATTRIBUTE)
    delta = prior_offsets(priors["share_before"], priors["share_realized"], 1.0)
    layers = biases(best)
    assert len(layers) == 3  # one class convolution per detection scale
    for before, after in zip(layers, biases(corrected)):
        np.testing.assert_array_equal(after, fp16(before + delta))
    used = "from the realized share trained (the instances in the batches trained)"  # the share τ uses (#25 item 4)
    assert f"balance_tau=1 {used}: saved {weights / 'best-tau1.pt'}" in log


def test_adjust_twice_composes_and_never_overwrites(detect_run, tmp_path):
    weights, _ = detect_run
    half = tmp_path / "half.pt"
    out = run([*ADJUST, f"model={weights / 'best.pt'}", "tau=0.5", f"save={half}"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    priors = getattr(load(weights / "best.pt"), PRIORS_ATTRIBUTE)
    delta = prior_offsets(priors["share_before"], priors["share_realized"], 0.5)
    for name, offset in zip(priors["names"], delta):
        assert any(line.split()[0] == name and line.split()[-1] == f"{offset:+.3f}" for line in out.stdout.splitlines())
    out = run([*ADJUST, f"model={half}", "tau=0.5"], cwd=tmp_path)  # default: next to the input
    assert out.returncode == 0 and f"saved {tmp_path / 'half-tau0.5.pt'} (tau 1 in total)" in out.stdout, out.stdout
    twice, once = load(tmp_path / "half-tau0.5.pt"), load(weights / "best-tau1.pt")
    assert getattr(twice, PRIORS_ATTRIBUTE)["tau"] == 1.0
    for a, b in zip(biases(twice), biases(once)):
        np.testing.assert_allclose(a, b, **FP16_STEP)
    out = run([*ADJUST, f"model={half}", "tau=1", f"save={half}"], cwd=tmp_path)
    assert out.returncode == 2 and "is the input checkpoint" in out.stdout


@pytest.mark.parametrize(
    "tau, message",
    [
        ("-1", "tau=-1 is invalid"),
        ("nan", "tau=nan is invalid"),
        ("inf", "tau=inf is invalid"),
        ("big", "tau=big is not a number"),
    ],
)
def test_adjust_refuses_a_bad_tau_in_one_line(tau, message, detect_run, tmp_path):
    out = run([*ADJUST, f"model={detect_run[0] / 'best.pt'}", f"tau={tau}", f"save={tmp_path / 'x.pt'}"], cwd=tmp_path)
    assert out.returncode == 2 and out.stdout.count("\n") == 1 and message in out.stdout, out.stdout
    assert not (tmp_path / "x.pt").exists()


def test_adjust_refuses_a_stock_model_and_a_head_without_bias(tmp_path):
    from ultralytics.nn.tasks import ClassificationModel

    model = ClassificationModel("yolo11n-cls.yaml", nc=3, verbose=False)
    torch.save({"model": model}, tmp_path / "stock.pt")
    out = run([*ADJUST, f"model={tmp_path / 'stock.pt'}", "tau=1"], cwd=tmp_path)
    assert out.returncode == 2 and out.stdout.count("\n") == 1, out.stdout
    assert "trained without class_balance" in out.stdout
    head = model.model[-1]
    head.linear = torch.nn.Linear(head.linear.in_features, 3, bias=False)
    setattr(model, PRIORS_ATTRIBUTE, {"share_before": [0.8, 0.1, 0.1], "share_trained": [1 / 3] * 3, "tau": 0.0})
    torch.save({"model": model}, tmp_path / "nobias.pt")
    out = run([*ADJUST, f"model={tmp_path / 'nobias.pt'}", "tau=1"], cwd=tmp_path)
    assert out.returncode == 2 and "Classify head has no per-class bias" in out.stdout, out.stdout
    assert not list(tmp_path.glob("*-tau*"))


PLANTED = {"share_before": [0.8, 0.15, 0.05], "share_trained": [1 / 3] * 3, "tau": 0.0}


def planted_checkpoint(path):
    """Save a yolo11n-cls model carrying PLANTED priors, as a balanced training would, at `path`."""
    from ultralytics.nn.tasks import ClassificationModel

    model = ClassificationModel("yolo11n-cls.yaml", nc=3, verbose=False)
    priors = {**PLANTED, "names": ["common", "medium", "rare"], "epochs": 1, "settings": "class_balance=1"}
    setattr(model, PRIORS_ATTRIBUTE, priors)
    torch.save({"model": model}, path)
    return path


def test_adjust_keeps_an_existing_file_unless_exist_ok(tmp_path):
    model = planted_checkpoint(tmp_path / "best.pt")
    for existing, args in ((tmp_path / "best-tau1.pt", []), (tmp_path / "mine.pt", [f"save={tmp_path / 'mine.pt'}"])):
        existing.write_bytes(b"keep me")
        out = run([*ADJUST, f"model={model}", "tau=1", *args], cwd=tmp_path)
        assert out.returncode == 2 and out.stdout.count("\n") == 1, out.stdout
        assert f"{existing} exists" in out.stdout and "exist_ok=True" in out.stdout
        assert existing.read_bytes() == b"keep me"
        out = run([*ADJUST, f"model={model}", "tau=1", *args, "exist_ok=maybe"], cwd=tmp_path)
        assert out.returncode == 2 and "exist_ok=maybe must be True or False" in out.stdout, out.stdout
        out = run([*ADJUST, f"model={model}", "tau=1", *args, "exist_ok=True"], cwd=tmp_path)
        assert out.returncode == 0 and f"saved {existing} (tau 1 in total)" in out.stdout, out.stdout
        assert getattr(load(existing), PRIORS_ATTRIBUTE)["tau"] == 1.0


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("runs", None, "is a folder; model= takes a checkpoint file"),
        ("best.onnx", b"\x08\x08\x12\x07pytorch\x1a\x052.5.0" + bytes(64), "is not a readable PyTorch checkpoint"),
        ("corrupt.pt", b"not a checkpoint at all", "is not a readable PyTorch checkpoint"),
        ("truncated.pt", "truncated", "is not a readable PyTorch checkpoint"),
        ("tensor.pt", "tensor", "holds no Ultralytics model"),
    ],
    ids=["folder", "onnx", "corrupt", "truncated", "tensor"],
)
def test_adjust_refuses_what_is_no_checkpoint_in_one_line(name, content, message, tmp_path):
    path = tmp_path / name
    if content is None:
        (path / "weights").mkdir(parents=True)
    elif content == "truncated":
        path.write_bytes(planted_checkpoint(tmp_path / "whole.pt").read_bytes()[:5000])
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        path.write_bytes(content)
    out = run([*ADJUST, f"model={path}", "tau=1"], cwd=tmp_path)
    assert out.returncode == 2 and out.stdout.count("\n") == 1, out.stdout
    assert message in out.stdout and str(path) in out.stdout and "Traceback" not in out.stdout
    assert not list(tmp_path.rglob("*-tau1*"))


def test_a_corrected_classifier_prefers_the_common_class():
    from ultralytics.nn.tasks import ClassificationModel

    model = ClassificationModel("yolo11n-cls.yaml", nc=3, verbose=False).eval()
    linear = model.model[-1].linear
    torch.nn.init.zeros_(linear.weight)  # planted: a balanced model with no evidence either way, all classes tied
    torch.nn.init.zeros_(linear.bias)
    setattr(model, PRIORS_ATTRIBUTE, dict(PLANTED))
    offsets = correct_class_prior(model, 1.0)
    with torch.no_grad():
        probs = model(torch.rand(2, 3, 32, 32))[0].numpy()  # eval: (probabilities, logits)
    np.testing.assert_allclose(probs, np.tile(np.array(PLANTED["share_before"]), (2, 1)), rtol=1e-5)  # the prior
    assert probs.argmax(1).tolist() == [0, 0] and offsets[0] > 0 > offsets[2]


def test_a_corrected_detector_scores_each_class_by_its_offset():
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False).eval()
    for layer in class_logit_layers(model):
        torch.nn.init.zeros_(layer.weight)  # planted: every anchor scores every class sigmoid(-2)
        torch.nn.init.constant_(layer.bias, -2.0)
    setattr(model, PRIORS_ATTRIBUTE, dict(PLANTED))
    offsets = correct_class_prior(model, 0.5)
    with torch.no_grad():
        scores = model(torch.rand(1, 3, 64, 64))[0][0, 4:].numpy()  # (classes, anchors)
    expected = 1 / (1 + np.exp(-(-2.0 + offsets)))
    np.testing.assert_allclose(scores, np.repeat(expected[:, None], scores.shape[1], 1), rtol=1e-5)
    assert scores[0].min() > 1 / (1 + math.exp(2)) > scores[2].max()  # common up, rare down


def test_an_end_to_end_head_corrects_both_branches():
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo26n.yaml", nc=3, verbose=False)
    head = model.model[-1]
    assert getattr(head, "one2one_cv3", None) is not None
    layers = class_logit_layers(model)
    assert {id(branch[-1]) for branch in (*head.cv3, *head.one2one_cv3)} == {id(layer) for layer in layers}


def test_rtdetr_corrects_every_score_head():
    from ultralytics.nn.tasks import RTDETRDetectionModel

    model = RTDETRDetectionModel("rtdetr-l.yaml", nc=3, verbose=False)
    head = model.model[-1]
    before = [b.copy() for b in biases(model)]
    setattr(model, PRIORS_ATTRIBUTE, dict(PLANTED))
    offsets = correct_class_prior(model, 1.0)
    layers = class_logit_layers(model)
    assert layers[0] is head.enc_score_head and layers[1:] == list(head.dec_score_head)
    for a, b in zip(biases(model), before):
        np.testing.assert_allclose(a, b + offsets, rtol=1e-6)


@pytest.mark.parametrize("kind", ["classify", "detect"])
def test_a_corrected_model_exports_to_onnx_with_the_same_predictions(kind, classify_run, detect_run, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import shutil

    from ultralytics import YOLO as Model

    weights = classify_run.wdir if kind == "classify" else detect_run[0]
    imgsz = 32 if kind == "classify" else 64
    for name in ("best.pt", "best-tau1.pt"):
        shutil.copy(weights / name, tmp_path / name)
    corrected = Model(tmp_path / "best-tau1.pt")
    exported = corrected.export(format="onnx", imgsz=imgsz, device="cpu", simplify=False)
    session = ort.InferenceSession(str(exported))
    images = torch.rand(4, 3, imgsz, imgsz)
    with torch.no_grad():
        pt = corrected.model.float().eval()(images)
        pt = (pt[0] if isinstance(pt, (list, tuple)) else pt).numpy()
        stock = Model(tmp_path / "best.pt").model.float().eval()(images)
        stock = (stock[0] if isinstance(stock, (list, tuple)) else stock).numpy()
    onnx = np.concatenate([session.run(None, {session.get_inputs()[0].name: im[None].numpy()})[0] for im in images])
    np.testing.assert_allclose(onnx, pt, rtol=1e-3, atol=1e-4)
    if kind == "classify":
        assert onnx.argmax(1).tolist() == pt.argmax(1).tolist()  # the same top class
        assert not np.allclose(onnx, stock, atol=1e-3)  # and the correction is in the exported graph
    else:
        np.testing.assert_allclose(onnx[:, :4], pt[:, :4], rtol=1e-3, atol=1e-2)  # the same boxes
        assert not np.allclose(onnx[:, 4:], stock[:, 4:], atol=1e-4)
