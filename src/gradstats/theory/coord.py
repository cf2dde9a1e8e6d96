"""Width exponents of the change of a network after one update (the coord check), from the
abc table. Pure Python: no jax, no torch. Derivation: docs/theory.md, "Update scaling".

Setting: input dim d fixed, width n of every hidden layer, readout of O(1) outputs, an
activation with phi(0)-free O(1) features (relu, tanh, ...), O(1) targets, a step of
``optimizer`` at base rate lr fixed in n. Per layer l, with the row's exponents (a, b) on its
fan-in and learning-rate exponents (c, e) of the optimizer family:

- effective readout entries ~ n^-beta, beta = a + b of the readout (1/2 for ntk and standard,
  1 for mup and mean_field); hidden layers have a + b = 1/2 in all four rows, so every hidden
  pre-activation is O(1) and every backward signal dL/dh_l is ~ n^-beta;
- the effective weight m W moves, per entry, by lr n^-g with
  SGD:  g = 2a + c - e   (gradient lr m^2 dL/d(mW); ``e`` counts for fan-out n)
  Adam: g = a + c - e    (the first Adam step is lr sign(g): entries lr m, whatever the
        gradient's size, while |grad| >> eps)
  where a and c act only through the fan-in n (the input layer's fan-in d is fixed);
- an update correlated with its input sums coherently over the fan-in: Delta W a ~ fan-in x
  entry; a hidden Delta h_l is the largest of the layers' own terms up to l (W_l Delta a_{l-1}
  keeps the entry scale, W W^T ~ O(1));
- the output change is the larger of Delta W_out a_L ~ n^(1 - g_out) (the readout's own
  update, ``output_readout``) and W_out Delta a_L ~ n^(1 - beta + x_L) (the features moving,
  ``output_feature``; Delta a_L is aligned with W_out^T by backpropagation).

These are the exponents of the terms first order in the update; a sum of terms with
different exponents approaches the largest one only as n grows (its local slope over a
finite range of widths lies between them), which is why the output is also split in two.

SGD's own term carries the backward signal n^-beta; Adam's does not (sign step).
"""

from __future__ import annotations

from gradstats import parameterization as pz

GROUPS = ("input", "hidden", "output", "output_feature", "output_readout")
VALID_STEP = 1


def change_exponents(parameterization: str, optimizer: str) -> dict[str, float]:
    """Predicted width exponents after one step from init, at fixed base lr, per `GROUPS`:
    ``preact_change_rms`` of the input layer and the hidden layers, ``output_change_rms``,
    and its two parts ``output_change_feature_rms`` and ``output_change_readout_rms``."""
    row = pz.get(parameterization)
    rule = row.lr_rule(optimizer)
    adam = pz.optimizer_family(optimizer) == "adam"
    beta = row.a.readout + row.b.readout

    def g(role: str) -> float:
        if role == "input":  # fan-in d: only the fan-out exponent depends on n
            return -rule.e.input
        a, c = row.a.of(role), rule.c.of(role)
        e = rule.e.of(role) if role == "hidden" else 0.0  # the readout's fan-out is O(1)
        return (a if adam else 2 * a) + c - e

    signal = 0.0 if adam else -beta  # entry scale of the backward signal in the own term
    x_input = signal - g("input")            # Delta W_1 x: d (fixed) terms
    x_hidden = max(x_input, 1.0 + signal - g("hidden"))  # fan-in n terms
    x_readout = 1.0 - g("readout")
    x_feature = 1.0 - beta + x_hidden
    return {"input": x_input, "hidden": x_hidden, "output": max(x_readout, x_feature),
            "output_feature": x_feature, "output_readout": x_readout}


def validity(step: int) -> str | None:
    """None at step 1 (the derivation is one update from init), else the reason."""
    if step == VALID_STEP:
        return None
    if step == 0:
        return "step 0: nothing has changed yet"
    return (f"step {step}: the derivation covers one update from init; later steps add "
            "the updates' feedback through the changed network")
