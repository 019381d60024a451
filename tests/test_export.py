"""ONNX export: onnxruntime gives PyTorch's outputs (max abs difference < 1e-4) for dense, conv
and recurrent models, on any batch size; series with gaps and many lengths give predict's answer."""

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits

from semivae.cli import main
from semivae.export import check_export, export_onnx
from semivae.train import train


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_onnx_matches_pytorch(arch, tiny, tmp_path):
    path = train(tiny(arch=arch, epochs=1, val_labels=10, calibrate=True), out=tmp_path / "r", progress=False)
    info = export_onnx(path, tmp_path / "m.onnx")
    assert info["outputs"] == ["proba", "z_mean", "score", "unknown"]
    x = load_digits().images[:37].reshape(37, 1, 8, 8).astype(np.float32)  # 0..16, the data's own units
    diffs = check_export(path, tmp_path / "m.onnx", x)
    del diffs["unknown"]  # the file holds the validation series whose score is the threshold: its flag may flip
    assert max(diffs.values()) < 1e-4, diffs
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(["proba"], {"x": x[:1]})[0].shape == (1, 10)  # any batch size


@pytest.mark.parametrize("model", ["m2", "m1m2", "sdgm"])
def test_latent_class_models_export_for_any_batch_size(model, tiny, tmp_path):
    """m2 (pspec's code), m1m2 and sdgm (adgm's code) trace their class enumeration with N symbolic."""
    extra = {"m1_epochs": 1} if model == "m1m2" else {}
    path = train(tiny(model=model, epochs=1, **extra), out=tmp_path / "r", progress=False)
    export_onnx(path, tmp_path / "m.onnx")
    x = load_digits().images[:37].reshape(37, 1, 8, 8).astype(np.float32)
    diffs = check_export(path, tmp_path / "m.onnx", x)
    assert {"proba", "z_mean", "score"} <= set(diffs) and max(diffs.values()) < 1e-3, diffs


def test_a_classifier_without_a_latent_exports_its_probabilities_alone(tiny, tmp_path):
    """The supervised sibling (and finetune's and distill's classifiers) have no q(z|x)."""
    path = train(tiny(mode="supervised", epochs=1), out=tmp_path / "r", progress=False)
    assert export_onnx(path, tmp_path / "m.onnx")["outputs"] == ["proba"]
    x = load_digits().images[:7].reshape(7, 1, 8, 8).astype(np.float32)
    assert list(check_export(path, tmp_path / "m.onnx", x)) == ["proba"]


def test_the_cli_checks_its_export(tiny, tmp_path, capsys):
    path = train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    np.savez(tmp_path / "x.npz", x=load_digits().images[:5].astype(np.uint8))
    assert main(["export", str(path), "--out", str(tmp_path / "m.onnx"), "--check", str(tmp_path / "x.npz")]) == 0
    assert "proba: max |onnxruntime - pytorch|" in capsys.readouterr().out


def test_a_confident_decoder_scores_alike(tiny, tmp_path):
    """A decoder whose logits reach -30 where a pixel is 0 (trained long; here its weights scaled):
    the exporter's own binary cross-entropy gave an infinite score there."""
    import torch

    from semivae.atomic import read_tensors
    from semivae.runs import save_weights

    path = train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    state = read_tensors(path / "model.safetensors")[0]
    last = [k for k in state if k.startswith("decoder") and k.endswith("weight")][-1]
    save_weights({**state, last: state[last] * 40}, path / "model.safetensors")
    x = load_digits().images[:37].reshape(37, 1, 8, 8).astype(np.float32)
    export_onnx(path, tmp_path / "m.onnx")
    diffs = check_export(path, tmp_path / "m.onnx", x)
    assert diffs["score"] < 1e-5, diffs
    assert torch.isfinite(torch.tensor(diffs["score"]))


def test_a_recurrent_model_exports_with_lengths_and_gaps(tiny, tmp_path, capsys):
    """Series of many lengths with missing values: the graph (x, lengths) gives predict's answer,
    for any batch size; the bidirectional recurrent layer runs unpacked there
    (tests/models/test_recurrent.py holds it to the packed one)."""
    from semivae import predict
    from tests.test_missing_series import _gappy

    x, lengths, _ = _gappy(tmp_path / "s.npz", n=60)
    seq = train(tiny(dataset=str(tmp_path / "s.npz"), arch="recurrent", hidden=[8, 8], rnn_hidden=8, epochs=1,
                     labels_per_class=5, bidirectional=True), out=tmp_path / "s", progress=False)
    capsys.readouterr()
    assert main(["export", str(seq), "--out", str(tmp_path / "s.onnx"), "--check", str(tmp_path / "s.npz")]) == 0
    out = capsys.readouterr().out  # the whole file, NaN and lengths as given
    assert "x ['N', 'T', 3], lengths ['N']" in out  # a recurrent net reads any length
    diffs = {line.split(":")[0].strip(): float(line.rsplit("=", 1)[1]) for line in out.splitlines() if "max |" in line}
    del diffs["unknown"]  # the file holds the validation series whose score is the threshold: its flag may flip
    assert max(diffs.values()) < 1e-4, diffs
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    longer = np.concatenate([x, np.random.default_rng(1).normal(size=(len(x), 6, 3))], 1).astype(np.float32)
    for xs, ls in ((x, lengths), (x[:, :9], np.minimum(lengths, 9)), (longer, lengths + 6)):  # shorter, longer
        for n in (1, 7):
            got = session.run(["proba"], {"x": xs[:n], "lengths": ls[:n].astype(np.int64)})[0]
            expected, _ = predict(seq, {"x": xs[:n], "lengths": ls[:n]})
            assert np.abs(got - expected).max() < 1e-5


def test_a_class_layer_and_a_latent_per_step_export_as_predict_and_embed_read_them(tmp_path):
    """--preset paper on series: pi and z at every step; the graph gives predict's probabilities
    (the mean over the valid steps) and embed's per-step means, for series of many lengths."""
    from semivae import embed, predict
    from tests.test_sequence_runs import _series

    x, lengths, _ = _series(tmp_path / "s.npz", n=40)
    assert main(["train", "--dataset", str(tmp_path / "s.npz"), "--preset", "paper", "--labels-per-class", "3",
                 "--epochs", "1", "--threads", "1", "--quiet", "--out", str(tmp_path / "p")]) == 0
    export_onnx(tmp_path / "p", tmp_path / "p.onnx")
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    proba, z = session.run(["proba", "z_mean"], {"x": x.astype(np.float32), "lengths": lengths.astype(np.int64)})
    assert np.abs(proba - predict(tmp_path / "p", {"x": x, "lengths": lengths})[0]).max() < 1e-5
    mu = embed(tmp_path / "p", {"x": x, "lengths": lengths})["mu"]  # (N, T, D)
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    assert z.shape == mu.shape and np.abs(z - mu)[valid].max() < 1e-5


def test_a_run_trained_with_image_size_exports_a_graph_that_resizes(tiny, tmp_path):
    """--image-size: the graph takes images of any height and width and resizes them as predict
    resizes files (bilinear, antialiased), so raw images of another size give predict's answer."""
    from PIL import Image

    from semivae import predict

    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(20, 30), (40, 40), (33, 12), (16, 16), (9, 9), (25, 14)] * 3):
        (tmp_path / "pics" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)).save(tmp_path / "pics" / f"c{i % 2}" / f"{i}.png")
    path = train(tiny(dataset=str(tmp_path / "pics"), image_size=[8, 12], labels_per_class=None, epochs=1),
                 out=tmp_path / "r", progress=False)
    info = export_onnx(path, tmp_path / "m.onnx")
    assert info["input_shape"] == ["N", 1, "H", "W"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for name in ("1.png", "3.png"):  # 40x40 and 16x16, neither the trained 12x8
        file = tmp_path / "pics" / "c1" / name
        raw = np.asarray(Image.open(file), dtype=np.float32)[None, None]  # (1, 1, h, w) as the file holds it
        got = session.run(["proba"], {"x": raw})[0]
        expected, _ = predict(path, file)  # Pillow's resize, rounded to whole grey levels
        assert np.abs(got - expected).max() < 0.02, (got, expected)
    x = load_digits().images[:3].reshape(3, 1, 8, 8).astype(np.float32) * 16  # any other size, any batch
    assert session.run(["proba"], {"x": x})[0].shape == (3, 2)
