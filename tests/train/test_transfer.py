"""Transfer learning: fine-tuning on a run's encoder, --init-from, and resumable sweeps."""

import csv
import json

import pytest
import torch

import semivae
from semivae.cli import main
from semivae.runs import load_run
from semivae.train.finetune import finetune

CONV = dict(arch="conv", channels=[32, 64], strides=[1, 2], fc=128, latent_dim=16, batch_norm=True, dropout=0.0)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    """A conv VAE on the digits images, no labels."""
    return semivae.train(dataset="digits", mode="unsupervised", epochs=3, out=tmp_path_factory.mktemp("vae") / "r",
                         progress=False, threads=1, **CONV)


def _encoder_state(path):
    return {k: v.clone() for k, v in load_run(path).model.state_dict().items() if k.startswith("encoder.")}


def test_a_frozen_encoder_is_bit_identical_after_fine_tuning_and_a_trainable_one_changes(vae, tmp_path):
    before = {k.replace("encoder.", "", 1): v for k, v in _encoder_state(vae).items()}
    frozen = finetune(vae, out=tmp_path / "frozen", labels_per_class=3, epochs=5, freeze=True, progress=False)
    after = {k.replace("encoder.", "", 1): v for k, v in _encoder_state(frozen).items()}
    assert before.keys() == after.keys() and any("running_mean" in k for k in before)  # batch norm stats included
    assert all(torch.equal(before[k], after[k]) for k in before)
    trained = finetune(vae, out=tmp_path / "trained", labels_per_class=3, epochs=5, encoder_lr=1e-3, progress=False)
    changed = {k.replace("encoder.", "", 1): v for k, v in _encoder_state(trained).items()}
    assert any(not torch.equal(before[k], changed[k]) for k in before if k.endswith("weight"))
    summary = json.loads((frozen / "summary.json").read_text())
    assert summary["init_from"]["carried"] == len(before)  # every encoder tensor; the head starts fresh
    res = semivae.evaluate(frozen)  # a fine-tuned run is a run like any other
    assert 0 <= res["accuracy"] <= 1 and "top5_accuracy" in res


def test_init_from_carries_every_matching_tensor_and_grows_the_decoder_input(vae, tmp_path):
    semi = semivae.train(dataset="digits", init_from=str(vae), labels_per_class=3, epochs=1, out=tmp_path / "semi",
                         progress=False, threads=1, **CONV)
    old, new = load_run(vae).model.state_dict(), load_run(semi).model
    info = json.loads((semi / "summary.json").read_text())["init_from"]
    assert info["carried"] == len(old) and set(info["fresh"]) == {"pi.label.weight", "pi.label.bias"}
    # before training, the decoder ignored pi: its new input columns started at zero
    fresh = semivae.train(dataset="digits", init_from=str(vae), labels_per_class=3, epochs=1, lr=1e-12,
                          out=tmp_path / "start", progress=False, threads=1, **CONV)
    w_old, w_new = old["decoder.head.0.weight"], load_run(fresh).model.state_dict()["decoder.head.0.weight"]
    assert w_new.shape[1] == w_old.shape[1] + 10
    torch.testing.assert_close(w_new[:, : w_old.shape[1]], w_old, atol=1e-6, rtol=0)
    assert new.decoder.head[0].weight.shape == w_new.shape


def test_init_from_a_run_of_another_shape_is_a_one_line_error(vae, tmp_path, capsys):
    assert main(["train", "--init-from", str(vae), "--arch", "conv", "--channels", "8,8", "--strides", "2,2",
                 "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --init-from:") and "differ in shape" in err and "\n" not in err
    assert not (tmp_path / "r").exists()
    assert main(["train", "--init-from", str(vae), "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "encoder tensors have no place in this model" in capsys.readouterr().err  # a dense model: no silent start
    assert main(["finetune", str(tmp_path / "nowhere"), "--out", str(tmp_path / "f")]) == 2


def test_a_sweep_writes_one_csv_and_resumes_without_redoing_finished_cells(vae, tmp_path, monkeypatch, capsys):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"seeds: [0, 1]\nbudgets: {{labels_per_class: [1, 3]}}\nconfigurations:\n"
                    f"  plain: {{model: classifier, dataset: digits, hidden: [16], epochs: 2, threads: 1}}\n"
                    f"  frozen: {{finetune: {vae}, freeze: true, epochs: 2}}\n")
    import semivae.train.sweep as sweep_module

    calls = []
    real = sweep_module.run_cell

    def counted(name, options, kind, budget, seed, out):
        calls.append((name, budget, seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the sweep in its third cell
        return real(name, options, kind, budget, seed, out)
    monkeypatch.setattr(sweep_module, "run_cell", counted)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 130
    assert f"run `semivae sweep {spec} --out {tmp_path / 'out'}` again to go on" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(tmp_path / "out" / "results.csv")))) == 2
    calls.clear()
    monkeypatch.setattr(sweep_module, "run_cell", real)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert len(rows) == 8 and {r["configuration"] for r in rows} == {"plain", "frozen"}
    assert len({(r["configuration"], r["budget"], r["seed"]) for r in rows}) == 8  # no cell twice
    assert {float(r["labels_per_class"]) for r in rows} == {1.0, 3.0}
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    assert "<h2>Accuracy against labels</h2>" in (tmp_path / "out" / "sweep.html").read_text()
    spec.write_text(spec.read_text().replace("epochs: 2, threads: 1", "epochs: 3, threads: 1"))  # plain changed
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "configuration 'plain' of" in capsys.readouterr().err


def test_bad_sweep_specs_are_one_line_errors(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("budgets: {per_class: [1]}\nconfigurations: {a: {}}\n")
    assert main(["sweep", str(spec)]) == 2
    assert "budgets" in capsys.readouterr().err
    spec.write_text("budgets: {labels_per_class: [1]}\nconfigurations: {a: {lattent_dim: 3}}\n")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "configuration 'a' of" in capsys.readouterr().err and not (tmp_path / "out").exists()
    spec.write_text("budgets: {labels_per_class: [1]}\nconfigurations: {a: {labels: 50}}\n")  # the grid's would win
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "sets labels: 50, but a sweep's budgets come from" in capsys.readouterr().err
    spec.write_text("budgets: {labels_per_class: [1]}\nseed: [5]\nconfigurations: {a: {}}\n")  # not 'seeds'
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "unknown key 'seed'; a sweep reads budgets, configurations, seeds, out" in capsys.readouterr().err
    for bad, needle in (("{dataset: digits, arch: recurrent}", "needs sequence data"),  # the data's check
                        ("{finetune: nothere}", "is not a run directory")):
        spec.write_text(f"budgets: {{labels_per_class: [1]}}\nconfigurations: {{ok: {{epochs: 1}}, bad: {bad}}}\n")
        assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2  # before the first cell trains
        err = capsys.readouterr().err
        assert "configuration 'bad' of" in err and needle in err and not (tmp_path / "out").exists()
