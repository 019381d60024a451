"""ONNX export: onnxruntime gives PyTorch's outputs (max abs difference < 1e-4) for dense and
conv models, on any batch size."""

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits

from semivae.cli import main
from semivae.errors import UserError
from semivae.export import check_export, export_onnx
from semivae.train import train


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_onnx_matches_pytorch(arch, tiny, tmp_path):
    path = train(tiny(arch=arch, epochs=1, val_labels=10, calibrate=True), out=tmp_path / "r", progress=False)
    info = export_onnx(path, tmp_path / "m.onnx")
    assert info["outputs"] == ["proba", "z_mean", "score", "unknown"]
    x = load_digits().images[:37].reshape(37, 1, 8, 8).astype(np.float32)  # 0..16, the data's own units
    diffs = check_export(path, tmp_path / "m.onnx", x)
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


def test_the_cli_checks_its_export_and_sequence_models_are_refused(tiny, tmp_path, capsys):
    path = train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    np.savez(tmp_path / "x.npz", x=load_digits().images[:5].astype(np.uint8))
    assert main(["export", str(path), "--out", str(tmp_path / "m.onnx"), "--check", str(tmp_path / "x.npz")]) == 0
    assert "proba: max |onnxruntime - pytorch|" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.normal(size=(40, 6, 2)).astype(np.float32), lengths=np.full(40, 6),
             y=np.arange(40) % 2)
    seq = train(tiny(dataset=str(tmp_path / "s.npz"), arch="recurrent", hidden=[8], rnn_hidden=8, epochs=1,
                     labels_per_class=None), out=tmp_path / "s", progress=False)
    with pytest.raises(UserError, match="sequence model"):
        export_onnx(seq, tmp_path / "s.onnx")
