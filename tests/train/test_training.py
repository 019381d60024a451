import json

import pytest
import torch

import semivae
from semivae.data import load_dataset
from semivae.errors import TrainingDiverged, UserError
from semivae.eval import model_outputs
from semivae.runs import load_run
from semivae.train import train


def test_run_directory_round_trip_gives_identical_predictions(tmp_path, tiny):
    path = train(tiny(), out=tmp_path / "run", progress=False)
    assert {p.name for p in path.iterdir()} == {"config.yaml", "data.json", "split.json", "model.safetensors",
                                                 "metrics.jsonl", "summary.json", "checkpoint.safetensors",
                                                 "unknown.json", "class_latents.safetensors"}
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"recon", "kl", "ce", "val_elbo", "seconds"} <= set(rows[0])
    split = json.loads((path / "split.json").read_text())
    assert len(split["labelled"]) == 50
    test = load_dataset("digits").test
    a = model_outputs(load_run(path).model, test)["proba"]["label"]
    b = model_outputs(load_run(path).model, test)["proba"]["label"]
    assert a.shape == (360, 10) and (a == b).all()
    # config.yaml says the weight the consistency term trained with (images: 10), not "default"
    assert load_run(path).config.model.consistency == 10.0
    # the config saved with the run re-makes the same run
    again = train(semivae.RunConfig.from_dict(load_run(path).config.to_dict()), out=tmp_path / "again", progress=False)
    assert (again / "split.json").read_text() == (path / "split.json").read_text()


def test_two_runs_with_one_seed_give_identical_metrics(tmp_path, tiny):
    rows = []
    for name in ("a", "b"):
        p = train(tiny(seed=3), out=tmp_path / name, progress=False)
        rows.append([{k: v for k, v in json.loads(line).items() if k != "seconds"}
                     for line in (p / "metrics.jsonl").read_text().splitlines()])
    assert rows[0] == rows[1]
    c = train(tiny(seed=4), out=tmp_path / "c", progress=False)
    assert json.loads((c / "metrics.jsonl").read_text().splitlines()[0])["loss"] != rows[0][0]["loss"]


def test_cosine_schedule_takes_the_learning_rate_from_lr_down_to_zero_step_by_step(tmp_path, tiny, monkeypatch):
    from semivae.train import loop

    seen = []
    original = loop.set_lr

    def record(optimizer, base_lrs, factor):
        original(optimizer, base_lrs, factor)
        seen.append([g["lr"] for g in optimizer.param_groups])
    monkeypatch.setattr(loop, "set_lr", record)
    train(tiny(epochs=3, lr=0.002, lr_schedule="cosine"), out=tmp_path / "cos", progress=False)
    first, last = seen[0][0], seen[-1][0]
    assert first == pytest.approx(0.002) and 0 < last < 0.002 * 0.01  # the last step is near 0, not past it
    assert all(a[0] >= b[0] for a, b in zip(seen, seen[1:]))  # it only falls
    assert len(seen) % 3 == 0 and len(seen) > 3  # once per step (as many each epoch), not once per epoch
    seen.clear()
    train(tiny(epochs=2), out=tmp_path / "const", progress=False)
    assert seen == []  # constant: the optimiser's rate is never touched


def test_ema_keeps_the_moving_average_of_the_weights_and_validates_it(tmp_path, tiny, monkeypatch):
    from safetensors.torch import load_file

    from semivae.train import loop

    raw = []  # the trained weights after every step, as the average saw them
    original = loop.make_average

    def recording(model, decay):
        average = original(model, decay)
        if average is None:
            return None
        update = average.update_parameters

        def update_and_record(m):
            update(m)
            raw.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        average.update_parameters = update_and_record
        return average
    monkeypatch.setattr(loop, "make_average", recording)
    path = train(tiny(epochs=2, ema=0.9, val_labels=10), out=tmp_path / "ema", progress=False)
    assert len(raw) == 2 * 40  # one update per step
    expected = {k: v.clone() for k, v in raw[0].items()}  # the first step's weights, then the recurrence
    for t, state in enumerate(raw[1:], start=1):
        d = min(0.9, (1 + t) / (10 + t))  # the warm-up: early weights fade fast
        for k, v in state.items():
            if v.is_floating_point():
                expected[k].mul_(d).add_(v, alpha=1 - d)
    saved = load_file(str(path / "model.safetensors"))
    last = raw[-1]
    floats = [k for k in saved if saved[k].is_floating_point()]
    assert floats and all(torch.allclose(saved[k], expected[k], atol=1e-6) for k in floats)
    assert any(not torch.allclose(saved[k], last[k]) for k in floats)  # the average, not the last step
    # training itself is untouched (the same terms step by step); validation sees the average
    plain = train(tiny(epochs=2, val_labels=10), out=tmp_path / "plain", progress=False)
    rows = [[json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()] for p in (path, plain)]
    for a, b in zip(*rows):
        assert {k: v for k, v in a.items() if not k.startswith("val_") and k != "seconds"} == \
               {k: v for k, v in b.items() if not k.startswith("val_") and k != "seconds"}
        assert a["val_log_loss"] != b["val_log_loss"]
    with pytest.raises(UserError, match="--ema 1.0 is outside"):
        train(tiny(ema=1.0), out=tmp_path / "bad", progress=False)


def test_early_stopping_keeps_the_best_epoch(tmp_path, tiny):
    p = train(tiny(epochs=6, patience=1, val_labels=10, lr=0.05), out=tmp_path / "r", progress=False)
    summary = json.loads((p / "summary.json").read_text())
    assert summary["monitor"] == "val_log_loss" and "best_epoch" in summary
    assert "10 labels taken from the budget" in summary["validation_labels"]


def test_with_patience_a_due_snapshot_writes_the_best_weights_even_when_the_epoch_did_not_improve(
        tmp_path, tiny, monkeypatch):
    """Validation improves at epoch 2, when no checkpoint is due (35 s an epoch, one a minute at
    most); the snapshot of epoch 3, due but not better, must hold epoch 2's weights, not epoch 1's."""
    import types

    from semivae.runs import RunWriter
    from semivae.train import loop

    seen, snapshots = [], {}  # the weights each validation saw; what each epoch wrote
    validate = loop.evaluate_split

    def recording(model, split, **kw):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return validate(model, split, **kw)
    monkeypatch.setattr(loop, "evaluate_split", recording)
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: 35.0 * len(seen)))
    scripted = {1: 1.0, 2: 0.5, 3: 0.9, 4: 0.9, 5: 0.9, 6: 0.9}
    monkeypatch.setattr(loop, "monitor_of", lambda row: ("val_log_loss", scripted[row["epoch"]]))
    epoch = RunWriter.epoch

    def writing(self, row, weights=None):
        if weights is not None:
            snapshots[row["epoch"]] = {k: v.clone() for k, v in weights.items()}
        epoch(self, row, weights)
    monkeypatch.setattr(RunWriter, "epoch", writing)
    path = train(tiny(epochs=6, patience=5, val_labels=10, checkpoint_seconds=60), out=tmp_path / "r", progress=False)
    assert sorted(snapshots) == [1, 3]  # due after epochs 1, 3 and 5; at 5 nothing new to write
    for epoch_, expected in ((1, seen[0]), (3, seen[1])):
        assert all(torch.equal(snapshots[epoch_][k], expected[k]) for k in expected)
    from safetensors.torch import load_file
    final = load_file(str(path / "model.safetensors"))
    assert all(torch.equal(final[k], seen[1][k]) for k in final)  # the run ends holding epoch 2's


def test_non_finite_loss_stops_and_keeps_last_good_weights(tmp_path, tiny, monkeypatch):
    from semivae.models import SemiVAE

    original = SemiVAE.forward
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        out = original(self, batch)
        if calls["n"] > 45:  # epoch 1 has 40 steps; poison epoch 2
            out.total = out.total * float("nan")
        return out

    monkeypatch.setattr(SemiVAE, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        train(tiny(epochs=3), out=tmp_path / "r", progress=False)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    model = load_run(tmp_path / "r").model  # epoch 1's weights, all finite
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


@pytest.mark.parametrize("flat,match", [
    ({"dataset": "no-such-set"}, "unknown data set"),
    ({"labels_per_class": 1000}, "needs 1000 labels of class"),
    ({"mode": "nonsense"}, "unknown mode"),
    ({"arch": "conv", "dataset": "__csv__", "labels_per_class": None}, "needs image data"),
    ({"decoder_arch": "conv", "dataset": "__csv__", "labels_per_class": None}, "--decoder-arch conv needs image"),
])
def test_bad_input_leaves_no_run_directory(tmp_path, tiny, flat, match):
    if flat.get("dataset") == "__csv__":
        csv = tmp_path / "f.csv"
        csv.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,\n7,8,1\n9,1,0\n")
        flat = {**flat, "dataset": str(csv)}
    with pytest.raises(UserError, match=match):
        train(tiny(**flat), out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_existing_output_directory_is_refused(tmp_path, tiny):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        train(tiny(), out=tmp_path / "run", progress=False)


def test_rmsprop_reads_momentum_and_rho_as_torch_momentum_and_alpha():
    from semivae.config import TrainConfig
    from semivae.train.trainer import OPTIMIZERS

    w = torch.nn.Parameter(torch.ones(3))
    opt = OPTIMIZERS["rmsprop"]([w], TrainConfig(optimizer="rmsprop", lr=0.01, momentum=0.0, rho=0.9))
    group = opt.param_groups[0]
    assert group["alpha"] == 0.9 and group["momentum"] == 0.0
    # one step from zero state: v = (1 - rho) g^2, so the step is lr * g / sqrt((1 - rho) g^2)
    w.grad = torch.full((3,), 2.0)
    opt.step()
    assert torch.allclose(w.detach(), torch.full((3,), 1 - 0.01 / 0.1 ** 0.5), atol=1e-5)


def test_adam_is_fused_into_one_kernel_on_the_cpu():
    from types import SimpleNamespace

    from semivae.train.trainer import OPTIMIZERS

    layer = torch.nn.Linear(3, 2)
    opt = OPTIMIZERS["adam"]([{"params": list(layer.parameters())}], SimpleNamespace(lr=1e-3, weight_decay=0.0))
    assert opt.defaults["fused"] is True
    before = layer.weight.detach().clone()
    layer(torch.randn(4, 3)).sum().backward()
    opt.step()
    assert not torch.equal(layer.weight, before)


def test_adam_keeps_pytorchs_per_tensor_kernel_for_a_parameter_in_another_layout():
    from types import SimpleNamespace

    from semivae.train.trainer import OPTIMIZERS

    w = torch.nn.Parameter(torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last))
    opt = OPTIMIZERS["adam"]([w], SimpleNamespace(lr=1e-3, weight_decay=0.0))
    assert not opt.defaults["fused"]
