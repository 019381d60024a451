import pytest

from semivae.config import RunConfig, load_config_file, nest, resolve
from semivae.errors import UserError


def test_precedence_defaults_preset_file_flags():
    assert resolve().arch.hidden == [512, 256]
    paper = resolve({"preset": "paper"})
    assert paper.arch.hidden == [1024, 1024] and paper.arch.latent_dim == 2 and paper.train.optimizer == "rmsprop"
    assert paper.train.lr == 5e-4 and paper.train.momentum == 0.9
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
