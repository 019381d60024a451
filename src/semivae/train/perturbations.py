"""Which consistency options (``--augment-*``, ``--consistency-*``) a fresh run's data can use: an
option given for another data kind (an image shift on a table), or for a run whose consistency term
is off (and no teacher whose student takes the perturbations), would change nothing, so it is
refused with the flag that would act instead."""

from __future__ import annotations

from dataclasses import fields

from ..config import RunConfig, resolve
from ..errors import UserError
from ..models import BaseModel

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


def given_options(cfg: RunConfig) -> list[str]:
    """The consistency options whose value is neither the default of the run's model, preset and
    architecture nor off (0 / False): the ones a user (or a config file) chose to act."""
    d = cfg.data
    base = resolve(overrides={"preset": cfg.preset, "arch": {"arch": cfg.arch.arch},
                              "model": {"model": cfg.model.model}, "data": {"anomaly_class": d.anomaly_class}}).model
    names = [f.name for f in fields(cfg.model) if f.name.startswith(("augment_", "consistency_"))]
    return [n for n in names if getattr(cfg.model, n) != getattr(base, n) and getattr(cfg.model, n) not in (0, False)]


def check_perturbations(kind: str, cfg: RunConfig, model: BaseModel) -> None:
    """A one-line error for a consistency option that cannot act on this run."""
    given = given_options(cfg)
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
