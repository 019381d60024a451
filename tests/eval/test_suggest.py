"""Which points to label next: uncertainty with diversity, typical points before any label, ids
out, --label-ids back in."""

import numpy as np
import pytest

from semivae.data.budget import read_label_ids
from semivae.errors import UserError
from semivae.cli import main
from semivae.eval.suggest import diverse_batch, margin_uncertainty, suggest, suggestions_csv, typical_batch
from semivae.runs import load_run
from semivae.train import train


def test_margin_uncertainty():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])
    assert np.allclose(margin_uncertainty(p), [0.0, 1.0, 0.7])


def test_a_diverse_batch_spreads_over_clusters_instead_of_taking_one_confusion_n_times():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.01, size=(50, 2))  # one tight cluster, slightly more uncertain
    b = rng.normal(5, 0.01, size=(50, 2)) + np.array([0, 0])
    z = np.concatenate([a, b])
    u = np.concatenate([np.full(50, 0.99), np.full(50, 0.9)])
    picked = diverse_batch(u, z, 2)
    assert (picked < 50).sum() == 1 and (picked >= 50).sum() == 1  # one from each
    plain = np.argsort(-u)[:2]
    assert (plain < 50).all()  # uncertainty alone takes both from the first cluster
    anchors = z[:1]  # a labelled point in cluster a pushes the first pick to cluster b
    assert diverse_batch(u, z, 1, anchors)[0] >= 50


def _blobs():
    """Three clusters of 300 / 200 / 100 points: a tight core of 90 % and a loose rim each."""
    rng = np.random.default_rng(0)
    parts = []
    for centre, size in ((0.0, 300), (10.0, 200), (20.0, 100)):
        core = rng.normal(0, 0.1, size=(size * 9 // 10, 2))
        rim = rng.normal(0, 2.0, size=(size - len(core), 2))
        parts.append(np.concatenate([core, rim]) + centre)
    return np.concatenate(parts), np.repeat([0, 1, 2], [300, 200, 100])


def test_typical_points_cover_each_cluster_once_from_its_dense_core():
    z, blob = _blobs()
    picked = typical_batch(z, 3, np.zeros(0, dtype=np.int64))
    assert sorted(blob[picked].tolist()) == [0, 1, 2]  # one per cluster, not three from the largest
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]])
    assert (np.linalg.norm(z[picked] - centres[blob[picked]], axis=1) < 0.3).all()  # the core, never the rim
    assert np.array_equal(picked, typical_batch(z, 3, np.zeros(0, dtype=np.int64)))  # deterministic
    labelled = np.array([0, 300])  # clusters 0 and 1 already hold a label: the next pick covers cluster 2
    assert blob[typical_batch(z, 1, labelled)[0]] == 2


def test_a_run_without_labels_suggests_typical_points_and_margin_is_refused(tiny, tmp_path, capsys):
    vae = load_run(train(tiny(mode="unsupervised", epochs=2), out=tmp_path / "vae", progress=False))
    rows = suggest(vae, 10)
    picked = [r["row"] for r in rows]
    assert len(set(picked)) == 10 and not set(vae.split.val.tolist()) & set(picked)
    assert all(r["predicted"] == "" and r["uncertainty"] is None for r in rows)
    assert suggestions_csv(vae, rows).splitlines()[1].endswith(",,")
    assert len(suggestions_csv(vae, rows, with_labelled=True).splitlines()) == 11  # the VAE learned from no label
    np.savez(tmp_path / "labelled.npz", x=np.zeros((3, 8, 8), np.uint8), y=np.array([0, 1, 2]))
    assert main(["evaluate", str(tmp_path / "vae"), "--data", str(tmp_path / "labelled.npz")]) == 0  # its ELBO
    with pytest.raises(UserError, match="--strategy typical"):
        suggest(vae, 10, strategy="margin")
    semi = load_run(train(tiny(labels_per_class=2, epochs=2), out=tmp_path / "semi", progress=False))
    rows = suggest(semi, 5, strategy="typical")  # a run with labels: typical points among those it did not see
    assert not set(semi.split.pool.tolist()) & {r["row"] for r in rows}
    assert all(0 <= r["uncertainty"] <= 1 for r in rows)
    out = tmp_path / "bad.csv"
    assert main(["suggest", str(tmp_path / "vae"), "--strategy", "nearest", "--out", str(out)]) == 2
    assert "--strategy" in capsys.readouterr().err and not out.exists()
    assert main(["suggest", str(tmp_path / "vae"), "--n", "4", "--out", str(out)]) == 0 and out.is_file()


def test_suggest_picks_unseen_rows_and_the_file_feeds_the_next_run(tiny, tmp_path):
    path = train(tiny(labels_per_class=2, epochs=2), out=tmp_path / "r0", progress=False)
    run = load_run(path)
    rows = suggest(run, 12)
    picked = [r["row"] for r in rows]
    assert len(set(picked)) == 12 and [r["rank"] for r in rows] == list(range(1, 13))
    seen = set(run.split.pool.tolist()) | set(run.split.val.tolist())
    assert not seen & set(picked)
    assert all(0 <= r["uncertainty"] <= 1 for r in rows)
    f = tmp_path / "next.csv"
    f.write_text(suggestions_csv(run, rows, with_labelled=True))
    labels = run.dataset().train.labels.numpy()
    assert set(read_label_ids(f, None, labels).tolist()) == set(picked) | set(run.split.pool.tolist())
    nxt = load_run(train(tiny(labels_per_class=None, label_ids=str(f), epochs=1), out=tmp_path / "r1", progress=False))
    assert set(nxt.split.pool.tolist()) == set(picked) | set(run.split.pool.tolist())


def test_label_ids_match_the_datas_own_ids(tmp_path):
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    labels = np.array([[0], [1], [-1], [0]])
    (tmp_path / "f.txt").write_text("d\nb\n")
    assert read_label_ids(tmp_path / "f.txt", ids, labels).tolist() == [1, 3]
    (tmp_path / "g.csv").write_text("rank,row,id\n1,0,a\n")
    assert read_label_ids(tmp_path / "g.csv", ids, labels).tolist() == [0]
    moved = np.array(["3/a.png", "1/b.png", "c.png"], dtype=object)  # suggested loose, then sorted into folders
    (tmp_path / "m.txt").write_text("a.png\nb.png\n")
    assert read_label_ids(tmp_path / "m.txt", moved, np.array([[3], [1], [-1]])).tolist() == [0, 1]
    (tmp_path / "t.txt").write_text("e\n")  # a row the carve has since moved into the test split
    with pytest.raises(UserError, match="names 'e', which the test split holds: .* give it as --test-data"):
        read_label_ids(tmp_path / "t.txt", ids, labels, carved=np.array(["e", "f"], dtype=object))
    (tmp_path / "h.txt").write_text("c\n")
    with pytest.raises(UserError, match="names 'c', which has no label in the data; label it there first"):
        read_label_ids(tmp_path / "h.txt", ids, labels)
    (tmp_path / "n.txt").write_text("filename\nd\n")  # a header of another name
    with pytest.raises(UserError, match="starts with 'filename', which is no id .* call it 'id'"):
        read_label_ids(tmp_path / "n.txt", ids, labels)
    twice = np.array(["1/a.png", "2/a.png", "b.png"], dtype=object)  # one file name in two folders
    (tmp_path / "a.txt").write_text("a.png\n")
    with pytest.raises(UserError, match="names 'a.png', which several files are called \\(1/a.png, 2/a.png, ...\\)"):
        read_label_ids(tmp_path / "a.txt", twice, np.array([[1], [2], [-1]]))


def test_a_label_column_in_the_file_is_checked_against_the_data_never_used(tmp_path):
    labels = np.array([[0], [1], [-1], [0]])
    heads = [("digit", ("zero", "one"))]
    f = tmp_path / "f.csv"
    f.write_text("row,label\n0,zero\n1,1\n3,\n")  # a class name, a class index, an empty cell: all agree
    assert read_label_ids(f, None, labels, heads).tolist() == [0, 1, 3]
    f.write_text("row,digit\n3,zero\n")  # the head's own name
    assert read_label_ids(f, None, labels, heads).tolist() == [3]
    for text, said in [("row,label\n0,banana\n", "'banana', but the data says 'zero'"),
                       ("row,digit\n1,zero\n", "'zero', but the data says 'one'")]:
        f.write_text(text)
        with pytest.raises(UserError, match=said):
            read_label_ids(f, None, labels, heads)
    f.write_text("row,label\n0,0\n")
    with pytest.raises(UserError, match="name the column after one of them"):
        read_label_ids(f, None, np.array([[0, 1]]), [("a", ("x",)), ("b", ("y", "z"))])


def test_a_csv_without_ids_gets_its_own_row_numbers_back_after_the_test_carve(tmp_path, capsys):
    """The carve takes labelled rows out of a CSV that has no test split; suggest's ids are still
    the file's row numbers (0: the first below the header), so a user labels the right rows."""
    import csv
    import io

    from sklearn.datasets import load_wine

    d = load_wine()
    keep = np.random.default_rng(0).random(len(d.target)) < 0.4
    lines = [",".join([f"f{i}" for i in range(d.data.shape[1])] + ["label"])]
    lines += [",".join([f"{v:g}" for v in row] + [str(c) if k else ""]) for row, c, k in zip(d.data, d.target, keep)]
    (tmp_path / "wine.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", "--dataset", str(tmp_path / "wine.csv"), "--epochs", "1", "--hidden", "16", "--threads", "1",
                 "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert main(["suggest", str(tmp_path / "r"), "--n", "20", "--out", str(tmp_path / "s.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert any(r["row"] != r["id"] for r in rows)  # the carve moved rows up
    assert not keep[[int(r["id"]) for r in rows]].any()  # every suggested row is unlabelled in the file
    test_ids = load_run(tmp_path / "r").dataset().test.ids.astype(int)
    assert keep[test_ids].all() and (load_run(tmp_path / "r").dataset().test.labels[:, 0].numpy()
                                     == d.target[test_ids]).all()
    run = load_run(tmp_path / "r")  # no budget: --with-labelled lists the labels validation hid too
    listed = suggestions_csv(run, [], with_labelled=True).splitlines()[1:]
    assert len(listed) == int((run.dataset().train.labels >= 0).sum()) > len(run.split.pool)
    (tmp_path / "few.csv").write_text("\n".join(["rank,row,id", *listed[:5]]) + "\n")
    capsys.readouterr()
    assert main(["train", "--dataset", str(tmp_path / "wine.csv"), "--label-ids", str(tmp_path / "few.csv"),
                 "--epochs", "1", "--hidden", "16", "--threads", "1", "--quiet", "--out", str(tmp_path / "r5")]) == 0
    assert f"{len(listed) - 5} labelled points of the data are not named by --label-ids" in capsys.readouterr().err
