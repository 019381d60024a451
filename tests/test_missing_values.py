"""Missing features in tables: every model reads around them, and a run trained, used,
exported and wrapped for scikit-learn takes them as NaN or empty CSV cells.

A missing cell is stored as the training mean (0 once normalised) and masked: the encoder
sees 0 there, the likelihood sums over the observed cells only, so what the cell held
changes nothing (Mattei & Frellsen 2019's zero-imputed encoder and masked likelihood)."""

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from semivae.cli import main
from semivae.data import Batch, load_dataset
from semivae.data.inputs import load_inputs
from semivae.errors import UserError
from semivae.models import MODELS, build_model
from semivae.nn import ArchConfig

from tests.conftest import model_config, spec


def _csv(path, text):
    path.write_text(text)
    return path


def test_csv_missing_cells(tmp_path):
    """Empty and NA-like cells are missing features: the statistics skip them, the stored value is
    the training mean (0 once normalised) and the batch's mask says which cells are real."""
    rows = ["a,b,label"] + [f"{i},{'' if i % 3 == 0 else 'NA' if i % 3 == 1 else 2 * i},{'xy'[i % 2]}"
                            for i in range(30)]
    b = load_dataset(str(_csv(tmp_path / "m.csv", "\n".join(rows))), label_column="label")
    data = b.train.append(b.test, torch.cat([b.train.labels, b.test.labels]))
    observed = data.observed
    assert observed is not None and observed[:, 0].all() and observed[:, 1].sum() == 10
    b_values = data.stored()[:, 1]
    assert np.nanmean(b_values[: len(b.train)]) == pytest.approx(float(b.train.shift[1]), rel=1e-5)
    batch = data.batch(torch.arange(len(data)))
    assert batch.mask.shape == (30, 2) and (batch.x[~batch.mask] == 0).all()
    assert torch.equal(batch.mask, observed)
    full = load_dataset(str(_csv(tmp_path / "f.csv", "a,label\n1,x\n2,y\n3,x\n4,y\n")))
    assert full.train.observed is None and full.train.mask(torch.arange(2)) is None  # nothing missing: no mask


def test_new_inputs_with_missing_cells(tmp_path):
    like = {"kind": "vector", "shape": (2,), "shift": [1.0, 2.0], "scale": [1.0, 0.5],
            "label_column": "label", "feature_names": ["f1", "f2"]}
    d = load_inputs(str(_csv(tmp_path / "gap.csv", "f1,f2\n,4\n2,null\n")), like)  # missing cells
    assert d.observed.tolist() == [[False, True], [True, False]]
    assert torch.allclose(d.inputs(torch.arange(2)), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    d = load_inputs(np.array([[np.nan, 4.0]]), like)  # an array's NaN likewise
    assert d.observed.tolist() == [[False, True]]
    with pytest.raises(UserError, match="row 0 has no feature value at all") as err:
        load_inputs(np.array([[np.nan, np.nan]]), like)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_missing_cell_changes_nothing(name):
    torch.manual_seed(0)
    extra = {"m1_epochs": 0} if name == "m1m2" else {}
    model = build_model(spec((6,), 3, likelihood="gaussian"), ArchConfig(hidden=[8], latent_dim=2),
                        model_config(name, **extra)).eval()
    x = torch.randn(5, 6)
    mask = torch.rand(5, 6) > 0.3
    mask[:, 0] = True
    other = torch.where(mask, x, torch.randn(5, 6) * 5)  # the same observed cells, anything in the others
    with torch.no_grad():
        for a, b in zip(model.predict_proba(x, mask).values(), model.predict_proba(other, mask).values()):
            assert torch.allclose(a, b, atol=1e-6)
        if model.has_decoder:
            ea, eb = model.elbo_terms(x, mask, sample=False), model.elbo_terms(other, mask, sample=False)
            assert all(torch.allclose(u, v, atol=1e-5) for u, v in zip(ea, eb))
            assert not torch.allclose(model.elbo_terms(x, None, sample=False)[0], ea[0])  # the mask counts
    model.train()
    out = model(Batch(x, torch.tensor([0, 1, -1, -1, 2])[:, None], mask=mask))
    assert torch.isfinite(out.total) and out.total.requires_grad


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory):
    """The wine table with a fifth of its cells empty or NA and a third of its labels."""
    d = load_wine()
    rng = np.random.default_rng(0)
    gone = rng.random(d.data.shape) < 0.2
    gone[:, 0] = False
    labels = np.where(rng.random(len(d.data)) < 0.3, np.array(["barolo", "grignolino", "barbera"])[d.target], "")
    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(d.data.shape[1])] + ["label"])
        for row, miss, label in zip(d.data, gone, labels):
            w.writerow([("NA" if j % 2 else "") if m else f"{v:.6g}" for j, (v, m) in enumerate(zip(row, miss))]
                       + [label])
    return path, np.where(gone, np.nan, d.data).astype(np.float32), d.target


def test_a_run_trains_predicts_scores_and_exports_with_missing_cells(wine_csv, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from semivae import load_run, predict
    from semivae.export import ExportGraph, check_export, export_onnx

    path, x, _ = wine_csv
    run_dir = tmp_path / "run"
    assert main(["anomaly", "--dataset", str(path), "--anomaly-class", "barbera", "--epochs", "3", "--hidden", "16",
                 "--latent-dim", "2", "--threads", "1", "--out", str(run_dir), "--quiet"]) == 0
    anomaly = json.loads((run_dir / "anomaly.json").read_text())
    assert anomaly["default_score"] == "combined" and list(anomaly["combine"])[0] == "neg_elbo"  # a table's parts
    assert main(["predict", str(run_dir), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    predicted = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [int(r["missing"]) for r in predicted] == np.isnan(x).sum(1).tolist()  # how much each row lacked
    assert main(["score", str(run_dir), str(path), "--out", str(tmp_path / "s.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert len(rows) == len(x) and all(np.isfinite(float(r["score"])) for r in rows)
    run = load_run(run_dir)
    export_onnx(run, tmp_path / "m.onnx")
    diffs = check_export(run, tmp_path / "m.onnx", x[:40])
    assert max(diffs.values()) < 1e-3, diffs
    graph = ExportGraph(run).eval()
    with torch.no_grad():
        exported = graph(torch.from_numpy(x[:40]))[0].numpy()
    library, _ = predict(run, x[:40])
    assert np.allclose(exported, library, atol=1e-5)  # the graph reads NaN as the library does


def test_scikit_learn_takes_nan_as_missing(wine_csv):
    from semivae.sklearn import SemiVAEClassifier

    _, x, y = wine_csv
    y_semi = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    clf = SemiVAEClassifier(epochs=3, hidden=[16], latent_dim=2, threads=1).fit(x, y_semi)
    assert clf.__sklearn_tags__().input_tags.allow_nan
    proba = clf.predict_proba(x[:20])
    assert proba.shape == (20, 3) and np.isfinite(proba).all()
    with pytest.raises(ValueError, match="infinity"):
        clf.predict(np.where(np.isnan(x[:3]), np.inf, x[:3]))


def test_impute_fills_the_missing_cells_and_keeps_the_rest(wine_csv, tmp_path, capsys):
    """`semivae impute`: observed cells as given, missing ones from the decoder, closer to the truth
    than the training means; refused, in one line, for a model without a decoder or for images."""
    path, x, _ = wine_csv
    truth = load_wine().data.astype(np.float32)
    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", str(path), "--epochs", "100", "--hidden", "64", "--latent-dim", "8",
                 "--dropout", "0", "--threads", "1", "--out", str(run_dir), "--quiet"]) == 0
    assert "training feature cells" in capsys.readouterr().err  # the note says how much is missing
    assert main(["impute", str(run_dir), str(path), "--out", str(tmp_path / "f.csv")]) == 0
    given, rows = list(csv.reader(open(path))), list(csv.reader(open(tmp_path / "f.csv")))
    assert rows[0] == given[0] and len(rows) == len(given)  # the user's file back, gaps filled
    assert [r[-1] for r in rows] == [r[-1] for r in given]  # the label column as it was
    filled = np.array([[float(v) for v in r[:-1]] for r in rows[1:]], dtype=np.float32)
    gone = np.isnan(x)
    assert np.isfinite(filled).all() and np.allclose(filled[~gone], x[~gone], rtol=1e-5)
    std, mean = np.nanstd(x, 0), np.nanmean(x, 0)
    rmse = np.sqrt(((((filled - truth) / std)[gone]) ** 2).mean())
    rmse_mean = np.sqrt(((((np.broadcast_to(mean, x.shape) - truth) / std)[gone]) ** 2).mean())
    assert rmse < 0.9 * rmse_mean, (rmse, rmse_mean)
    from semivae import impute

    same = impute(run_dir, x)  # the Python call on an array with NaN
    assert np.allclose(same["x"], filled, rtol=1e-5, atol=1e-4) and (same["observed"] == ~gone).all()
    np.savez(tmp_path / "gaps.npz", x=x)
    assert main(["impute", str(run_dir), str(tmp_path / "gaps.npz"), "--out", str(tmp_path / "g.csv")]) == 0
    rows = list(csv.reader(open(tmp_path / "g.csv")))
    assert rows[0][:3] == ["row", "id", "f0"] and np.allclose(np.array(rows[1:], dtype=float)[:, 2:], filled, rtol=1e-5)
    assert main(["impute", str(run_dir), str(path), "--out", str(tmp_path / "f.txt")]) == 2
    sup = tmp_path / "sup"
    assert main(["train", "--dataset", str(path), "--mode", "supervised", "--epochs", "1", "--hidden", "8",
                 "--threads", "1", "--out", str(sup), "--quiet"]) == 0
    with pytest.raises(UserError, match="has no decoder to fill cells with"):
        impute(sup, x)
    assert not (tmp_path / "f.txt").exists()


def test_a_packed_table_keeps_its_missing_cells(wine_csv, tmp_path):
    """`semivae data pack` of a table with gaps: the same masks, and training from disk equals training in memory."""
    import semivae
    from semivae.data.packed import PackedData

    path, _, _ = wine_csv
    assert main(["data", "pack", str(path), str(tmp_path / "packed"), "--quiet"]) == 0
    mem, disk = load_dataset(str(path)), load_dataset(str(tmp_path / "packed"))
    assert isinstance(disk.train, PackedData) and disk.train.observed is not None
    idx = torch.arange(len(mem.train))
    assert torch.equal(disk.train.mask(idx), mem.train.mask(idx))
    assert torch.equal(disk.train.take(idx[5:9]).mask(torch.arange(4)), mem.train.mask(idx[5:9]))
    fast = dict(hidden=[16], latent_dim=2, epochs=2, batch_size=32, threads=1, progress=False)
    runs = [semivae.train(dataset=str(d), out=tmp_path / n, **fast)
            for n, d in (("m", path), ("d", tmp_path / "packed"))]
    rows = [[{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (r / "metrics.jsonl").read_text().splitlines()] for r in runs]
    assert rows[0] == rows[1]


def test_the_weighted_fill_reads_the_observed_cells_only_and_each_row_alone():
    """conditional_mean (MIWAE's importance-weighted E[x | observed]): what the missing cells hold
    changes nothing, and with the draws shared a row's value does not depend on its batch."""
    torch.manual_seed(0)
    model = build_model(spec((6,), 3, likelihood="gaussian"), ArchConfig(hidden=[8], latent_dim=2),
                        model_config("semivae")).eval()
    x, mask = torch.randn(5, 6), torch.rand(5, 6) > 0.3
    mask[:, 0] = True
    eps = torch.randn(50, 2)
    with torch.no_grad():
        full = model.conditional_mean(x, mask, eps)
        assert torch.allclose(model.conditional_mean(torch.where(mask, x, torch.randn(5, 6) * 9), mask, eps), full,
                              atol=1e-6)
        assert torch.allclose(model.conditional_mean(x[2:4], mask[2:4], eps), full[2:4], atol=1e-6)
        assert not torch.allclose(full, model.reconstruct(x, mask))  # not the decoder at the mean
