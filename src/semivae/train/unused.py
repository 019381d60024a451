"""Options a fresh run was given that would change nothing, refused with what would act instead:
an architecture option of another family (``--channels`` on a dense run), a model option its mode
does not read (``--alpha`` without a class layer), a consistency option (``--augment-*``,
``--consistency-*``) for another data kind (an image shift on a table) or for a run whose
consistency term is off (and no teacher whose student takes the perturbations). "Given" is a value
other than the one the run's model, preset and architecture start from."""

from __future__ import annotations

from dataclasses import fields

from ..config import RunConfig, resolve
from ..errors import UserError
from ..models import BaseModel
from ..nn import ARCHS, decoder_family

# the data kinds each perturbation acts on (the rest act on every kind)
KINDS_OF = {"augment_shift": ("image",), "augment_rotate": ("image",), "augment_elastic": ("image",),
            "augment_flip": ("image",), "augment_erase": ("image",), "augment_gain": ("image",),
            "augment_noise": ("vector", "sequence"), "augment_warp": ("sequence",),
            "consistency_mix": ("image", "vector")}
# what perturbs each kind, for the message
ACTS_ON = {"image": "--augment-shift / --augment-rotate / --augment-elastic / --augment-flip / --augment-erase / "
                    "--augment-gain", "vector": "--augment-noise and --consistency-mix",
           "sequence": "--augment-noise and --augment-warp"}
NAMES = {"image": "images", "vector": "a table", "sequence": "series"}


def _baseline(cfg: RunConfig) -> RunConfig:
    """The configuration the run's model, preset and architecture start from, before any option."""
    arch = {"arch": cfg.arch.arch, "decoder_arch": cfg.arch.decoder_arch}
    return resolve(overrides={"preset": cfg.preset, "arch": arch, "model": {"model": cfg.model.model},
                              "data": {"anomaly_class": cfg.data.anomaly_class}})


def given_options(cfg: RunConfig, base: RunConfig | None = None) -> list[str]:
    """The consistency options whose value is neither the baseline's nor off (0 / False): the
    ones a user (or a config file) chose to act."""
    base_model = (base or _baseline(cfg)).model
    names = [f.name for f in fields(cfg.model) if f.name.startswith(("augment_", "consistency_"))]
    return [n for n in names if getattr(cfg.model, n) != getattr(base_model, n)
            and getattr(cfg.model, n) not in (0, False)]


# (section, option) -> why it cannot act in ``cfg`` (None: it can)
RULES = {
    **{("train", n): (lambda c: None if c.train.optimizer == "rmsprop" else "it is rmsprop's; --optimizer rmsprop")
       for n in ("rho", "momentum")},
    ("model", "warmup_epochs"): lambda c: None if c.model.kl_schedule == "warmup" else
    "it ramps the KL weight up; --kl-schedule warmup (the learning rate has no warm-up)",
    **{("model", n): (lambda c: None if c.model.kl_schedule == "capacity" else
                      "it shapes the capacity KL term; --kl-schedule capacity")
       for n in ("gamma", "capacity_max", "capacity_epochs")},
    **{("model", n): (lambda c: None if c.data.teacher else "it weighs what teachers teach; --teacher RUN")
       for n in ("teacher_weight", "teacher_mix")},
    ("train", "patience"): lambda c: None if c.data.val_fraction > 0 or c.data.val_labels else
    "it stops on the validation points; --val-fraction > 0",
}


def check_unused(kind: str, cfg: RunConfig, model: BaseModel) -> None:
    """A one-line error for an option that cannot act on this run (module docstring)."""
    base = _baseline(cfg)
    for (section, name), why in RULES.items():
        reason = why(cfg) if hasattr(getattr(cfg, section), name) else None
        if reason and getattr(getattr(cfg, section), name) != getattr(getattr(base, section), name):
            raise UserError(f"--{name.replace('_', '-')} changes nothing here: {reason}; or drop it")
    families = {cfg.arch.arch, decoder_family(cfg.arch)}
    read = {f.name for family in families for f in fields(ARCHS[family].options)}
    every = {f.name for family in ARCHS.values() for f in fields(family.options)}
    for name in sorted(every - read):
        if getattr(cfg.arch, name) != getattr(base.arch, name):
            owners = sorted(a for a, family in ARCHS.items() if name in {f.name for f in fields(family.options)})
            raise UserError(f"--{name.replace('_', '-')} is an option of --arch {' / '.join(owners)}; this run's "
                            f"--arch {cfg.arch.arch} does not read it: drop it")
    for name, why in model.unused_options().items():  # [model] options, or [arch] ones (latent_dim)
        section = "model" if hasattr(cfg.model, name) else "arch"
        if getattr(getattr(cfg, section), name) != getattr(getattr(base, section), name):
            raise UserError(f"--{name.replace('_', '-')} changes nothing here: {why}; drop it")
    check_perturbations(kind, cfg, model, base)


def check_perturbations(kind: str, cfg: RunConfig, model: BaseModel, base: RunConfig | None = None) -> None:
    """A one-line error for a consistency option that cannot act on this run."""
    given = given_options(cfg, base)
    if not given:
        return
    wrong = [n for n in given if n in KINDS_OF and kind not in KINDS_OF[n]]
    if wrong:
        flag = wrong[0].replace("_", "-")
        raise UserError(f"--{flag} perturbs {' and '.join(NAMES[k] for k in KINDS_OF[wrong[0]])}, but the data is "
                        f"{NAMES[kind]}; drop it (on {NAMES[kind]} the consistency term uses {ACTS_ON[kind]})")
    flag = given[0].replace("_", "-")
    if model.consistency is None and not cfg.data.teacher:  # a taught student's inputs take them too
        if not model.heads:
            raise UserError(f"--{flag} shapes the consistency term of the class layer, which this run has not; "
                            f"drop --{flag}")
        raise UserError(f"--{flag} shapes the consistency term, which is off for this run; add --consistency 10, "
                        f"or drop --{flag}")
