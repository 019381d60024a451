"""New inputs in every form (paths, arrays, tensors, data frames), ids carried through, and
arrays from Python written as a run's data file."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from semivae.data import load_dataset, load_inputs
from semivae.data.arrays import training_npz
from semivae.errors import UserError

VECTOR = {"kind": "vector", "shape": [3], "shift": [1.0, 2.0, 3.0], "scale": [1.0, 0.5, 0.25],
          "feature_names": ["a", "b", "c"], "label_column": "label", "id_column": "name"}


def test_arrays_tensors_and_frames_give_the_same_inputs(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    base = load_inputs(x, VECTOR)
    for form in (torch.from_numpy(x), x.tolist(), pd.DataFrame(x, columns=["a", "b", "c"])):
        d = load_inputs(form, VECTOR)
        assert torch.equal(d.inputs(torch.arange(4)), base.inputs(torch.arange(4)))
    shuffled = pd.DataFrame({"c": x[:, 2], "name": list("wxyz"), "a": x[:, 0], "b": x[:, 1]})
    d = load_inputs(shuffled, VECTOR)  # columns matched by name, the id column kept out
    assert torch.equal(d.inputs(torch.arange(4)), base.inputs(torch.arange(4)))
    assert d.ids.tolist() == list("wxyz")
    with pytest.raises(UserError, match="lacks feature columns"):
        load_inputs(shuffled.drop(columns="b"), VECTOR)
    with pytest.raises(UserError, match="shape"):
        load_inputs(x[:, :2], VECTOR)


def test_a_csv_id_column_names_rows_and_stays_out_of_the_features(tmp_path):
    (tmp_path / "d.csv").write_text("name,a,b,label\n" + "".join(f"p{i},{i},{i % 4},{i % 2}\n" for i in range(30)))
    bundle = load_dataset(str(tmp_path / "d.csv"), id_column="name")
    assert bundle.meta["feature_names"] == ["a", "b"]
    assert sorted(bundle.train.ids.tolist() + bundle.test.ids.tolist()) == sorted(f"p{i}" for i in range(30))
    row = bundle.train.ids.tolist().index("p7")
    assert bundle.train.x[row].tolist() == [7.0, 3.0]
    picked = load_dataset(str(tmp_path / "d.csv"), id_column="name", feature_columns=["b"])
    assert picked.meta["feature_names"] == ["b"] and picked.train.x.shape[1] == 1
    info = {**VECTOR, "shape": [2], "shift": [0.0, 0.0], "scale": [1.0, 1.0], "feature_names": ["a", "b"]}
    (tmp_path / "new.csv").write_text("a,name,b\n1,first,2\n3,second,4\n")
    assert load_inputs(tmp_path / "new.csv", info).ids.tolist() == ["first", "second"]
    (tmp_path / "bare.csv").write_text("a,b\n1,2\n")  # new data may come without ids
    assert load_inputs(str(tmp_path / "bare.csv"), info).ids is None
    (tmp_path / "texts.csv").write_text("a,b\nx1,2\nx2,4\nx3,5\n")  # a training column, not droppable here
    with pytest.raises(UserError, match="'x1' is not a number, and the run reads this column as a feature; fill in "
                                        "numbers") as err:
        load_inputs(tmp_path / "texts.csv", info)
    assert "--feature-columns" not in str(err.value) and "--id-column" not in str(err.value)


def test_a_negative_label_other_than_minus_one_is_refused_as_a_typo():
    with pytest.raises(UserError, match="y holds the label -2; mark unlabelled rows -1"):
        training_npz(np.zeros((4, 2), np.float32), np.array([0, 1, -1, -2]))
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]})  # named after x=, not the run's copy of it
    with pytest.raises(UserError, match="column 1 \\('b'\\) of x has no value in any row"):
        training_npz(frame, np.array([0, 1]))


def test_carved_rows_without_names_keep_their_numbers_in_the_file(tmp_path):
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{i},{i % 2 if i % 3 else ''}\n" for i in range(30)))
    bundle = load_dataset(str(tmp_path / "d.csv"))
    both = [(int(i), float(v)) for d in (bundle.train, bundle.test) for i, v in zip(d.ids, d.x[:, 0])]
    assert sorted(both) == [(i, float(i)) for i in range(30)] and len(bundle.test)
    x = np.arange(20, dtype=np.float32)[:, None, None].repeat(4, 1)  # series i holds the value i
    np.savez(tmp_path / "s.npz", x=x, y=np.arange(20) % 2, lengths=np.full(20, 4))
    seq = load_dataset(str(tmp_path / "s.npz"))
    for d in (seq.train, seq.test):
        assert [int(i) for i in d.ids] == d.x[:, 0, 0].round().int().tolist()
    np.savez(tmp_path / "n.npz", x=x, y=np.arange(20) % 2, lengths=np.full(20, 4), ids=np.array([f"s{i}" for i in range(20)]))
    assert sorted(load_dataset(str(tmp_path / "n.npz")).train.ids.tolist() +
                  load_dataset(str(tmp_path / "n.npz")).test.ids.tolist()) == sorted(f"s{i}" for i in range(20))


def test_image_folders_name_rows_by_file(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "train" / cls / f"{cls}{i}.png")
    bundle = load_dataset(str(tmp_path / "train"))
    assert sorted(bundle.train.ids.tolist() + bundle.test.ids.tolist()) == sorted(
        f"{c}/{c}{i}.png" for c in ("cat", "dog") for i in range(3))
    info = {"kind": "image", "shape": [1, 8, 8], "shift": 0.0, "scale": 1 / 255}
    d = load_inputs(tmp_path / "train" / "dog", info)
    assert d.ids.tolist() == ["dog0.png", "dog1.png", "dog2.png"]
    one = load_inputs(tmp_path / "train" / "dog" / "dog2.png", info)  # one image file: one row, the same pixels
    assert one.ids.tolist() == ["dog2.png"] and torch.equal(one.x[0], d.x[2])
    (tmp_path / "d.csv").write_text("a\n1\n")
    with pytest.raises(UserError, match="cannot read .*d.csv for a model trained on image data; give a folder"):
        load_inputs(tmp_path / "d.csv", info)


def test_image_folders_read_nested_folders_and_stray_colour_images_as_grey(tmp_path):
    places = ["cat/a", "cat/a", "cat", "dog", "dog/b/c", "unlabelled/day2", "unlabelled", ".hidden"] + ["dog"] * 20
    for i, place in enumerate(places):
        (tmp_path / "train" / place).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 9 * i, np.uint8)).save(tmp_path / "train" / place / f"im{i}.png")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "train" / "cat" / "red.png")
    bundle = load_dataset(str(tmp_path / "train"))
    ids = sorted(bundle.train.ids.tolist() + bundle.test.ids.tolist())
    assert "cat/a/im0.png" in ids and "dog/b/c/im4.png" in ids and "unlabelled/day2/im5.png" in ids
    assert len(ids) == 28 and not any(".hidden" in i for i in ids)  # hidden folders stay out
    assert bundle.train.shape[0] == 1  # one colour image among 27 grey ones (< 5 %): read as grey, and said
    assert bundle.meta["mixed_colour"]["odd"] == 1 and bundle.meta["mixed_colour"]["first"].endswith("red.png")


def test_an_image_folder_before_any_label_loads_unlabelled(tmp_path):
    for name in ("loose/a.png", "loose/b.png", "sorted/unlabelled/a.png", "sorted/unlabelled/b.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / name)
    for folder, ids in (("loose", ["a.png", "b.png"]), ("sorted", ["unlabelled/a.png", "unlabelled/b.png"])):
        bundle = load_dataset(str(tmp_path / folder))
        assert bundle.heads[0].classes == () and (bundle.train.labels == -1).all()
        assert bundle.train.ids.tolist() == ids and len(bundle.test.x) == 0


def test_image_size_resizes_a_folder_of_mixed_sizes_in_training_and_prediction(tmp_path):
    for i, (w, h) in enumerate([(20, 30), (40, 40), (33, 12), (16, 16)]):
        (tmp_path / "pics" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w), 60 * i, np.uint8)).save(tmp_path / "pics" / f"c{i % 2}" / f"{i}.png")
    with pytest.raises(UserError, match="resize all images to one size, e.g. with --image-size"):
        load_dataset(str(tmp_path / "pics"))
    bundle = load_dataset(str(tmp_path / "pics"), image_size=[8, 12])
    assert bundle.train.shape == (1, 8, 12) and bundle.meta["image_size"] == [8, 12]
    assert sorted(int(v) for v in np.concatenate([bundle.train.x[:, 0, 0, 0], bundle.test.x[:, 0, 0, 0]])) == [
        0, 60, 120, 180]  # flat images keep their grey level
    info = {"kind": "image", "shape": [1, 8, 12], "shift": 0.0, "scale": 1 / 255, "image_size": [8, 12]}
    assert load_inputs(tmp_path / "pics" / "c1" / "1.png", info).x.shape == (1, 1, 8, 12)  # predict resizes alike
    with pytest.raises(UserError, match="is 40x40 but the model expects 12x8"):
        load_inputs(tmp_path / "pics" / "c1" / "1.png", {**info, "image_size": None})  # a run trained without it
    with pytest.raises(UserError, match="--image-size resizes the images of a folder"):
        load_dataset("digits", image_size=[16])


def test_training_arrays_encode_classes_and_keep_unlabelled_rows(tmp_path):
    x = np.random.default_rng(0).normal(size=(12, 2))
    y = np.array(["b", "a", "", "b", "a", None, "b", "a", "b", "a", "b", "a"], dtype=object)
    z = np.load(io.BytesIO(training_npz(x, y, carve_test=False)))
    assert z["classes"].tolist() == ["a", "b"]
    assert z["y"].tolist() == [1, 0, -1, 1, 0, -1, 1, 0, 1, 0, 1, 0]
    assert len(z["x_test"]) == 0
    numeric = np.load(io.BytesIO(training_npz(x, np.array([3, 7, -1, 3, 7, 7, 3, -1, 3, 7, 3, 7]))))
    assert numeric["classes"].tolist() == ["3", "7"] and numeric["y"][2] == -1
    with pytest.raises(UserError, match="one label per row"):
        training_npz(x, y[:5])
    with pytest.raises(UserError, match="does not have|do not have"):
        training_npz(x, y, x[:2], np.array(["c", "a"], dtype=object))


def test_new_npz_rows_keep_their_ids_and_empty_inputs_are_refused(tmp_path):
    like = {"kind": "vector", "shape": (2,), "shift": 0.0, "scale": 1.0}
    np.savez(tmp_path / "n.npz", x=np.ones((3, 2), np.float32), ids=np.array(["a", "b", "c"]))
    assert load_inputs(str(tmp_path / "n.npz"), like).ids.tolist() == ["a", "b", "c"]
    seq = {"kind": "sequence", "shape": (4, 1), "shift": [0.0], "scale": [1.0]}
    np.savez(tmp_path / "s.npz", x=np.ones((2, 4, 1), np.float32), ids=np.array(["u", "v"]))
    assert load_inputs(str(tmp_path / "s.npz"), seq).ids.tolist() == ["u", "v"]
    with pytest.raises(UserError, match="holds no inputs; give at least one row"):
        load_inputs(np.zeros((0, 2), np.float32), like)


def test_series_padded_with_nan_end_where_their_values_end(tmp_path):
    x = np.ones((2, 5, 2), np.float32)
    x[0, 3:] = np.nan  # padding: every channel NaN from step 3 on
    x[1, 1, 0] = np.nan  # a missing value inside a series
    np.savez(tmp_path / "s.npz", x=x, y=np.array([0, 1]), kind="sequence")
    b = load_dataset(str(tmp_path / "s.npz"))  # one series per class: no test split carved
    assert b.train.lengths.tolist() == [3, 5] and int(b.train.gaps().sum()) == 1
    np.savez(tmp_path / "unmarked.npz", x=x, y=np.array([0, 1]))  # read as images: the error says how to mark series
    with pytest.raises(UserError, match="save kind='sequence' or their lengths"):
        load_dataset(str(tmp_path / "unmarked.npz"))


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    from semivae.data.images import read_images

    Image.fromarray(np.array([[0, 65535], [32896, 1000]], np.uint16)).save(tmp_path / "deep.png")
    assert read_images([tmp_path / "deep.png"])[0, 0].tolist() == [[0, 255], [128, 4]]


def test_label_column_picks_one_of_an_npz_label_columns(tmp_path):
    rng = np.random.default_rng(0)
    y = np.stack([rng.integers(0, 3, 60), rng.integers(0, 2, 60)], 1)
    np.savez(tmp_path / "g.npz", x=rng.random((60, 4, 4)).astype(np.float32), y=y, factor_names=np.array(["a", "b"]))
    both = load_dataset(str(tmp_path / "g.npz"))
    picked = load_dataset(str(tmp_path / "g.npz"), label_column="b")
    assert [h.name for h in both.heads] == ["a", "b"] and [h.name for h in picked.heads] == ["b"]
    assert picked.train.labels.shape[1] == 1 and set(picked.train.labels[:, 0].tolist()) <= {-1, 0, 1}
    with pytest.raises(UserError, match="has the label columns \\['a', 'b'\\]; name one of them"):
        load_dataset(str(tmp_path / "g.npz"), label_column="c")


def test_an_image_in_two_folders_and_a_test_set_that_is_not_apart_are_said(tmp_path):
    for i, place in enumerate(["cat", "cat", "dog", "dog", "unlabelled", "unlabelled"]):
        (tmp_path / "pics" / place).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(tmp_path / "pics" / place / f"{i}.png")
    (tmp_path / "pics" / "dog" / "0.png").write_bytes((tmp_path / "pics" / "cat" / "0.png").read_bytes())  # copied
    (tmp_path / "pics" / "unlabelled" / "2.png").write_bytes((tmp_path / "pics" / "dog" / "2.png").read_bytes())
    (tmp_path / "test" / "cat").mkdir(parents=True)
    (tmp_path / "test" / "cat" / "t.png").write_bytes((tmp_path / "pics" / "cat" / "1.png").read_bytes())
    bundle = load_dataset(str(tmp_path / "pics"), test_data=str(tmp_path / "test"))
    both = bundle.meta["labelled_and_not"]
    assert (both["classes"], both["unlabelled"]) == (1, 1) and both["first"] == "cat/0.png and dog/0.png"
    assert bundle.meta["test_in_train"] == {"n": 1, "first": "cat/t.png"}
    with pytest.raises(UserError, match="is the training data itself"):
        load_dataset(str(tmp_path / "pics"), test_data=str(tmp_path / "pics"))
