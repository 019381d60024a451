"""Weight initialisation schemes, by name (``--weight-init``), applied to a built model.

``torch`` keeps PyTorch's defaults (Kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in),
1/sqrt(fan_in)) for weights and biases). ``glorot`` is Keras' default for dense and conv layers:
Glorot-uniform weights, U(-sqrt(6 / (fan_in + fan_out)), +...), and zero biases; it is what the
paper presets' Keras models started from. Recurrent cells keep PyTorch's scheme under either.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def glorot_(model: nn.Module) -> None:
    """Re-initialise every dense and conv layer of ``model`` in place, in module order."""
    for m in model.modules():
        if isinstance(m, LAYERS):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


INITS: dict[str, Callable[[nn.Module], None]] = {"torch": lambda model: None, "glorot": glorot_}
