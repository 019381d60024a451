"""The class-control hook: the decoder is taught to follow the class it is given, through the
model's own heads held fixed."""

import pytest
import torch

from semivae.errors import UserError
from semivae.models import build_model
from semivae.nn import ArchConfig
from semivae.train import train
from tests.conftest import model_config, spec


def _model(weight=1.0, model="semivae", shape=(1, 8, 8), **arch):
    cfg = model_config(model, class_control=weight, consistency=0.0)
    return build_model(spec(shape, 3), ArchConfig(hidden=[16], latent_dim=2, dropout=0.0, **arch), cfg)


def _decoder_params(model):
    """The generative networks: the decoder, and SDGM's p(a | y, z) that feeds it."""
    prefixes = ("decoder.", "p_a.") if getattr(model, "a_feeds_x", False) else ("decoder.",)
    return [p for n, p in model.named_parameters() if n.startswith(prefixes)]


@pytest.mark.parametrize("model", ["semivae", "m2", "adgm", "sdgm"])
def test_gradients_reach_the_decoder_only(model):
    torch.manual_seed(0)
    m = _model(model=model)
    terms = {}
    total = m.add_class_control(torch.zeros(()), terms, 16)
    total.backward()
    assert terms["class_control"] > 0
    decoder = {id(p) for p in _decoder_params(m)}
    assert decoder and all(p.grad is not None and p.grad.abs().sum() > 0 for p in _decoder_params(m))
    assert all(p.grad is None for p in m.parameters() if id(p) not in decoder)  # pi and the encoder learn nothing


def test_batch_norm_statistics_do_not_see_the_generated_images():
    m = _model(batch_norm=True)
    before = {k: v.clone() for k, v in m.named_buffers() if k.startswith("encoder.")}
    m.add_class_control(torch.zeros(()), {}, 16)
    assert before and all(torch.equal(before[k], v) for k, v in m.named_buffers() if k in before)


def test_minimising_the_term_makes_generation_follow_the_class():
    torch.manual_seed(0)
    m = _model()
    opt = torch.optim.Adam(_decoder_params(m), lr=1e-2)
    first = None
    for _ in range(150):
        terms = {}
        opt.zero_grad()
        m.add_class_control(torch.zeros(()), terms, 64).backward()
        opt.step()
        first = terms["class_control"].item() if first is None else first
    assert first > 0.9  # about log 3 at the start: the decoder ignores the class
    m.eval()
    with torch.no_grad():
        classes = torch.arange(3).repeat_interleave(50)
        x = m.generate(torch.randn(150, 2), {"label": classes})
        hit = (m.predict_proba(x)["label"].argmax(1) == classes).float().mean().item()
    # an untrained pi cannot be sure of anything, so the term stays above 0; its argmax follows the class
    assert terms["class_control"].item() < 0.8 * first and hit > 0.9


def test_off_by_default_reported_when_on_and_refused_for_sequences(tiny, tmp_path):
    assert _model(weight=0.0).class_control == 0.0 and model_config().class_control == 0.0
    path = train(tiny(class_control=1.0, epochs=1), out=tmp_path / "r", progress=False)
    assert '"class_control"' in (path / "metrics.jsonl").read_text().splitlines()[-1]
    with pytest.raises(UserError, match="--class-control"):
        cfg = model_config(class_control=1.0)
        build_model(spec((6, 2), 3, likelihood="gaussian", kind="sequence"),
                    ArchConfig(arch="recurrent", hidden=[8], latent_dim=2), cfg)


@pytest.mark.parametrize("decoder_class", ["soft", "detached"])
def test_a_detached_class_keeps_the_reconstruction_out_of_pi(decoder_class):
    from tests.conftest import batch

    torch.manual_seed(0)
    cfg = model_config(class_control=0.0, consistency=0.0, decoder_class=decoder_class)
    m = build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[16], latent_dim=2, dropout=0.0), cfg)
    x = torch.rand(8, 1, 8, 8)
    m(batch(x, torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.bool))).total.backward()  # no labels
    pi_grad = sum(p.grad.abs().sum() for p in m.pi.parameters() if p.grad is not None)
    assert (pi_grad > 0) == (decoder_class == "soft")
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())  # the trunk still learns


def test_labels_feed_the_decoder_where_known_and_pi_elsewhere():
    from tests.conftest import batch

    torch.manual_seed(0)
    cfg = model_config(class_control=0.0, consistency=0.0, decoder_class="labels", alpha=0.0)
    m = build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[16], latent_dim=2, dropout=0.0), cfg)
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([2, 0, 1, 1, 0, 2])
    known = torch.tensor([True, True, True, False, False, False])
    logits = m.inference(x, sample=False).logits
    fed = m.pi.decoder_input(logits, "labels", batch(x, y, known).labels)  # (6, 3)
    assert torch.equal(fed[:3], torch.eye(3)[y[:3]]) and torch.allclose(fed[3:], logits["label"][3:].softmax(-1))
    m(batch(x, y)).total.backward()  # every point labelled, alpha 0: the reconstruction reaches pi nowhere
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.pi.parameters())
    m.zero_grad()
    m(batch(x, y, known)).total.backward()  # through the unlabelled points it does
    assert sum(p.grad.abs().sum() for p in m.pi.parameters() if p.grad is not None) > 0
