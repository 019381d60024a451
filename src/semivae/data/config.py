"""The ``[data]`` options: which data, which labels, how validation is carved."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import opt


@dataclass
class DataConfig:
    dataset: str = opt("digits", "dataset name (digits, mnist, fashion-mnist) or a path to a .npz, .csv or image folder")
    data_dir: str | None = opt(None, "folder holding the dataset files (else $SEMIVAE_DATA, then the user cache)")
    labels: str | None = opt(None, "label budget: a total count drawn class-balanced, or 'all' (default: all labels the "
                             "data has); per head when the data has several label columns")
    labels_per_class: int | None = opt(None, "label budget: this many labelled points per class")
    label_fraction: float | None = opt(None, "label budget: this fraction of each class's labelled points (0..1)")
    split_seed: int | None = opt(None, "seed of the label draw and the validation carve (default: --seed); runs with "
                                 "one --split-seed and different --seed share their labels, e.g. an ensemble's members")
    val_fraction: float = opt(0.1, "fraction of the training images held out for validation (their labels stay hidden)")
    val_labels: int = opt(0, "labels taken from the budget for validation (early stopping on log loss); they are not trained on")
    oracle_val_labels: bool = opt(False, "use the validation split's labels beyond the budget (unrealistic; reported as such)")
    label_ratio: float = opt(1.0, "labelled points per unlabelled point in each batch (paper: 1 = 1:1)")
    test_data: str | None = opt(None, "an image folder or .csv of the training data's form whose labelled points are "
                                      "the test split (classes matched by name), so none of the training data's labels "
                                      "is held out for testing")
    image_size: list[int] | None = opt(None, "an image folder: resize every image to H,W pixels as it is read (one "
                                             "number: square), in training and in predict; without it all images "
                                             "must share the first one's size")
    label_column: str = opt("label", "name of the label column in a CSV file")
    id_column: str | None = opt(None, "a CSV file's column naming each row (kept out of the features; predictions "
                                      "and embeddings carry it)")
    feature_columns: list[str] | None = opt(None, "the CSV columns that are features (default: every column but the "
                                                  "label and id columns)")
    label_ids: str | None = opt(None, "a file of training-split row ids (one per line, or an 'id' column) whose labels "
                                      "the model may use, instead of a drawn budget (what `semivae suggest` writes)")
    unlabelled: bool = opt(True, "train on the points without a label too (--no-unlabelled: on the labelled points "
                                 "alone, e.g. a VAE of its labels only)")
    joint_labels: bool = opt(False, "with several label columns: the budget draws points (class-balanced on the "
                                    "first column) that keep every column's label, instead of each column apart")
    teacher: list[str] | None = opt(None, "trained runs (comma-separated; several are averaged) whose class "
                                          "probabilities this run learns on its unlabelled points (distillation); they "
                                          "must share this run's data and label draw (`semivae distill` copies them)")
    anomaly_class: str | None = opt(None, "anomaly protocol: this class (name or index) is anomalous; train on the "
                                    "others, test on held-out normal points plus every anomalous one")

    @property
    def every_label(self) -> bool:
        """No budget given: the run takes every label the data has."""
        return (self.labels in (None, "all") and self.labels_per_class is None and self.label_fraction is None
                and self.label_ids is None)
