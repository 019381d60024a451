import pytest

from semivae.config import RunConfig, load_config_file, nest, resolve
from semivae.errors import UserError


def test_precedence_defaults_preset_file_flags():
    assert resolve().arch.hidden == [512, 256]
    paper = resolve({"preset": "paper"})
    assert paper.arch.hidden == [1024, 1024] and paper.arch.latent_dim == 2 and paper.train.optimizer == "rmsprop"
    # Keras' RMSprop (rho 0.9, no momentum) and initialisers for the dense net; the conv one as measured
    assert paper.train.lr == 5e-4 and (paper.train.momentum, paper.train.rho) == (0.0, 0.9)
    assert paper.arch.weight_init == "glorot" and paper.model.alpha == 30
    conv = resolve({"preset": "paper", "arch": {"arch": "conv"}})
    assert (conv.train.momentum, conv.train.rho, conv.arch.weight_init, conv.model.alpha) == (0.9, 0.99, "torch", 500)
    file_cfg = {"preset": "paper", "arch": {"latent_dim": 8}, "train": {"epochs": 3}}
    cfg = resolve(file_cfg, nest({"epochs": 5}))
    assert cfg.arch.latent_dim == 8 and cfg.train.epochs == 5 and cfg.arch.hidden == [1024, 1024]


def test_round_trip_and_unknown_keys():
    cfg = resolve(None, nest({"labels": "100", "mode": "supervised"}))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="unknown config key"):
        RunConfig.from_dict({"data": {"labelz": 3}})
    with pytest.raises(UserError, match="unknown option"):
        nest({"labelz": 3})


def test_yaml_and_toml_files(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  alpha: 3.5\n")
    (tmp_path / "b.toml").write_text("[model]\nalpha = 3.5\n")
    assert load_config_file(str(tmp_path / "a.yaml")) == load_config_file(str(tmp_path / "b.toml"))
    (tmp_path / "bad.toml").write_text("[model\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config_file(str(tmp_path / "bad.toml"))


@pytest.mark.parametrize("text,suffix,needle", [
    ('[train]\nepochs = "ten"\n', ".toml", "[train] epochs = 'ten' is not a whole number"),
    ("[arch]\nhidden = 512\n", ".toml", "[arch] hidden = 512 is not a list of whole numbers"),
    ("[model]\nalpha = true\n", ".toml", "[model] alpha = True is not a number"),
    ("[data]\nval_fraction = [0.1]\n", ".toml", "[data] val_fraction"),
    ("- data\n- train\n", ".yaml", "holds a list at its top level"),
    ("train: 5\n", ".yaml", "[train] must be a table"),
    ("model:\n  head_alpha: 3\n", ".yaml", "[model] head_alpha = 3 is not a table"),
])
def test_config_values_are_type_checked_with_a_one_line_error(tmp_path, capsys, text, suffix, needle):
    from semivae.cli import main

    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
    assert not (tmp_path / "r").exists()


def test_python_keywords_are_type_checked_too(tmp_path):
    import semivae

    with pytest.raises(UserError, match=r"\[train\] epochs = 'ten'"):
        semivae.train(epochs="ten", out=tmp_path / "r")
    assert resolve(None, nest({"labels": 100})).data.labels == "100"  # a count given as a number is fine


def test_each_model_owns_its_options():
    from semivae.models import M2Config, PSpecConfig, SemiVAEConfig

    semi, m2, pspec = (resolve(None, {"model": {"model": m}}).model for m in ("semivae", "m2", "pspec"))
    assert type(semi) is SemiVAEConfig and type(m2) is M2Config and type(pspec) is PSpecConfig
    assert not hasattr(semi, "samples") and not hasattr(m2, "structure") and not hasattr(pspec, "mode")
    assert pspec.samples == 8 and m2.samples == 1 and semi.beta == 0.25 and m2.beta == 1.0
    with pytest.raises(UserError, match="--samples belongs to --model m1m2 / m2 / pspec"):
        resolve(None, {"model": {"model": "semivae", "samples": 4}})
    # a config file that lists every model's options at their defaults (as runs wrote them before) still resolves
    legacy = {"model": {"model": "m2", "mode": "semi", "structure": "z|x,y", "samples": 1, "m1_epochs": 20}}
    assert resolve(legacy).model.samples == 1
    # and a saved run's config is read back whatever it holds
    saved = RunConfig.from_dict({"model": {"model": "semivae", "samples": 4}}, saved=True)
    assert saved.model.model == "semivae"


def test_the_saved_config_round_trips_for_every_model():
    from semivae.models import MODELS

    for name in MODELS:
        cfg = resolve(None, {"model": {"model": name}})
        assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_a_run_saved_before_rotations_existed_resumes_without_them():
    saved = resolve(None, {}).to_dict()
    del saved["model"]["augment_rotate"]  # as a config.yaml written before the option
    assert RunConfig.from_dict(saved, saved=True).model.augment_rotate == 0.0
    assert RunConfig.from_dict(saved).model.augment_rotate == 15.0  # a user's own file: today's default


def test_conv_gets_label_targets_and_elastic_bends_and_old_conv_runs_resume_without_them():
    conv, dense = resolve(None, {"arch": {"arch": "conv"}}), resolve(None, {})
    assert (conv.model.consistency_labels, conv.model.augment_elastic) == (True, 1.5)
    assert (dense.model.consistency_labels, dense.model.augment_elastic) == (False, 0.0)
    off = resolve(None, {"arch": {"arch": "conv"}, "model": {"augment_elastic": 0.0, "consistency_labels": False}})
    assert (off.model.consistency_labels, off.model.augment_elastic) == (False, 0.0)  # the user's word wins
    saved = conv.to_dict()
    del saved["model"]["augment_elastic"], saved["model"]["consistency_labels"]  # a conv run of before
    old = RunConfig.from_dict(saved, saved=True).model
    assert (old.consistency_labels, old.augment_elastic) == (False, 0.0)


def test_conv_preset_is_the_wider_encoder_unless_told_otherwise():
    conv, paper = resolve(None, {"arch": {"arch": "conv"}}), resolve({"preset": "paper", "arch": {"arch": "conv"}})
    assert (conv.arch.channels, conv.arch.strides, conv.arch.fc) == ([32, 64, 128], [1, 2, 2], 256)
    assert (paper.arch.channels, paper.arch.fc) == ([64, 64, 64], 512)  # Table 14 as it was
    light = resolve(None, {"arch": {"arch": "conv", "channels": [16, 32], "strides": [2, 2], "fc": 128}})
    assert (light.arch.channels, light.arch.strides, light.arch.fc) == ([16, 32], [2, 2], 128)  # the user's word wins


def test_a_conv_run_of_the_lighter_preset_loads_with_its_own_sizes(tmp_path):
    import semivae
    from semivae.runs import load_run

    run = semivae.train(dataset="digits", arch="conv", channels=[16, 32], strides=[2, 2], fc=128, labels_per_class=3,
                        epochs=1, threads=1, progress=False, out=tmp_path / "light")
    model = load_run(run).model  # rebuilt from config.yaml, not from today's preset
    assert [m.out_channels for m in model.encoder.features if hasattr(m, "out_channels")] == [16, 32]
    assert model.encoder.out_features == 128


def test_conv_averages_its_weights_unless_told_not_to_and_old_conv_runs_resume_without():
    conv, dense = resolve(None, {"arch": {"arch": "conv"}}), resolve(None, {})
    assert (conv.train.ema, dense.train.ema) == (0.999, 0.0)
    assert resolve(None, {"arch": {"arch": "conv"}, "train": {"ema": 0.0}}).train.ema == 0.0  # the user's word wins
    saved = conv.to_dict()
    del saved["train"]["ema"]  # a conv run written before --ema
    assert RunConfig.from_dict(saved, saved=True).train.ema == 0.0


def test_series_get_the_recurrent_architecture_unless_told_otherwise(tmp_path):
    import numpy as np

    np.savez(tmp_path / "series.npz", x=np.zeros((4, 5, 2), np.float32), lengths=np.array([5, 4, 3, 5]))
    np.savez(tmp_path / "whole.npz", x=np.zeros((4, 5, 2), np.float32), kind="sequence")
    np.savez(tmp_path / "images.npz", x=np.zeros((4, 8, 8), np.uint8))
    for dataset in ("basic-motions", "sequential-mnist", str(tmp_path / "series.npz"), str(tmp_path / "whole.npz")):
        cfg = resolve(None, {"data": {"dataset": dataset}})
        assert (cfg.arch.arch, cfg.arch.hidden, cfg.model.alpha) == ("recurrent", [64, 64], 100.0), dataset
        assert cfg.model.augment_noise == 0.5, dataset  # the consistency term's noise for series
    for dataset in ("digits", "mnist", str(tmp_path / "images.npz"), str(tmp_path / "absent.npz")):
        cfg = resolve(None, {"data": {"dataset": dataset}})
        assert (cfg.arch.arch, cfg.model.augment_noise) == ("dense", 0.1), dataset
    from semivae.data import load_dataset
    from semivae.data.packed import pack
    from tests.data.test_sequences import _har_folder

    np.savez(tmp_path / "labelled.npz", x=np.ones((6, 5, 2), np.float32), lengths=np.array([5, 4, 3, 5, 2, 5]),
             y=np.array([0, 1, 0, 1, 0, 1]))
    packed = {kind: pack(load_dataset(source), tmp_path / kind) for kind, source in
              (("series", str(tmp_path / "labelled.npz")), ("images", "digits"))}
    _har_folder(tmp_path / "har")
    for dataset, arch in ((packed["series"], "recurrent"), (packed["images"], "dense"), (tmp_path / "har", "recurrent")):
        assert resolve(None, {"data": {"dataset": str(dataset)}}).arch.arch == arch, dataset
    told = resolve(None, {"data": {"dataset": "basic-motions"}, "arch": {"arch": "dense"}})
    assert (told.arch.arch, told.arch.hidden) == ("dense", [512, 256])  # the user's word wins
    paper = resolve({"preset": "paper"}, {"data": {"dataset": "japanese-vowels"}})
    assert (paper.arch.arch, paper.arch.sequence_latent) == ("recurrent", "per-step")


def test_a_detector_of_series_trains_without_the_consistency_term_unless_told():
    """--anomaly-class on series: alpha 20 and no consistency term, which detected held-out
    classes better on both real sets (docs/benchmarks.md section 11, session 46); classifiers of
    series and detectors of images keep their defaults, and the user's word wins."""
    detector = resolve(None, {"data": {"dataset": "basic-motions", "anomaly_class": "standing"}})
    assert (detector.arch.arch, detector.model.alpha, detector.model.consistency) == ("recurrent", 20.0, 0.0)
    classifier = resolve(None, {"data": {"dataset": "basic-motions"}})
    assert (classifier.model.alpha, classifier.model.consistency) == (100.0, None)  # None: the term on for series
    images = resolve(None, {"data": {"dataset": "digits", "anomaly_class": "7"}})
    assert (images.arch.arch, images.model.alpha, images.model.consistency) == ("dense", 20.0, None)
    told = resolve(None, {"data": {"dataset": "japanese-vowels", "anomaly_class": "3"}, "model": {"consistency": 5.0}})
    assert (told.model.alpha, told.model.consistency) == (20.0, 5.0)
