import pytest
import torch

from semivae.nn import ArchConfig, make_decoder, make_encoder


@pytest.mark.parametrize("shape", [(64,), (1, 8, 8), (1, 28, 28)])
def test_dense_shapes(shape):
    arch = ArchConfig(arch="dense", hidden=[32, 16])
    enc = make_encoder(arch, shape)
    h = enc(torch.rand(5, *shape))
    assert h.shape == (5, 16) == (5, enc.out_features)
    dec = make_decoder(arch, 7, shape)
    assert dec(torch.randn(5, 7)).shape == (5, *shape)


@pytest.mark.parametrize("shape,strides", [((1, 8, 8), [2, 2]), ((1, 28, 28), [1, 1, 2]), ((3, 7, 9), [2, 2]),
                                           ((1, 28, 28), [2, 2])])
def test_conv_shapes(shape, strides):
    arch = ArchConfig(arch="conv", channels=[8] * len(strides), strides=strides, fc=32, batch_norm=True, dropout=0.5)
    enc = make_encoder(arch, shape)
    assert enc(torch.rand(4, *shape)).shape == (4, 32)
    dec = make_decoder(arch, 6, shape)
    assert dec(torch.randn(4, 6)).shape == (4, *shape)


def test_paper_conv_preset_matches_table_14():
    from semivae.config import resolve

    cfg = resolve({"preset": "paper", "arch": {"arch": "conv"}})
    enc = make_encoder(cfg.arch, (1, 28, 28))
    assert enc.feature_shape == (64, 14, 14)  # 12544 features before FC 512
    assert enc.out_features == 512
    dec = make_decoder(cfg.arch, 2 + 10, (1, 28, 28))
    assert dec.start_shape == (64, 14, 14)
    convs = [m for m in dec.body if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.stride[0] for c in convs] == [1, 1, 2]  # stride-2 layer last, as in the table


def test_decoder_arch_pairs_a_conv_encoder_with_the_dense_decoder():
    from semivae.nn import DenseDecoder, decoder_family

    arch = ArchConfig(arch="conv", decoder_arch="dense", channels=[8, 8], strides=[2, 2], fc=32, hidden=[24])
    assert decoder_family(arch) == "dense" and decoder_family(ArchConfig(arch="conv")) == "conv"
    assert make_encoder(arch, (1, 8, 8))(torch.rand(4, 1, 8, 8)).shape == (4, 32)
    dec = make_decoder(arch, 6, (1, 8, 8))
    assert isinstance(dec, DenseDecoder) and dec.net[0].out_features == 24  # --hidden, not the conv sizes
    assert dec(torch.randn(4, 6)).shape == (4, 1, 8, 8)


@pytest.mark.parametrize("arch,decoder,message", [("dense", "foo", "unknown --decoder-arch 'foo'"),
                                                  ("recurrent", "dense", "its own family only"),
                                                  ("dense", "conv", "one stride per conv layer")])
def test_decoder_arch_refusals_are_one_line_user_errors(arch, decoder, message):
    from semivae.config import resolve
    from semivae.errors import UserError

    with pytest.raises(UserError, match=message):
        resolve({"arch": {"arch": arch, "decoder_arch": decoder, "channels": [8, 8], "strides": [2]}})
