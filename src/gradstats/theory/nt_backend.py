"""neural-tangents as an alternative backend (optional dependency, imported lazily).

neural-tangents 0.6.5 needs jax < 0.6, so it lives in its own environment (``.venv-nt``, the
``nt`` extra). `stax_network` builds the same composition as `gradstats.layers.network_spec`
(and so `gradstats.simulate.build_model`), block by block:

- block 1: ``Dense(width, W_std=sigma_w, b_std=sigma_b or None, parameterization)``;
- blocks 2..depth: ``[LayerNorm], phi, Dense(width)``, or with ``arch.residual`` the residual
  block ``serial(FanOut(2), parallel(Identity(), serial([LayerNorm], phi, Dense(width),
  DotGeneral(rhs=alpha))), FanInSum())``, h_l = h_{l-1} + alpha z_l;
- readout: ``[LayerNorm], phi, Dense(output_dim)`` (depth 0: the Dense alone).

``LayerNorm`` is ``stax.LayerNorm(axis=-1, eps=1e-12)`` (no affine parameters, as
`gradstats.layers.norm.LayerNorm`). The branch scale alpha is ``DotGeneral(rhs=alpha)``,
nt's constant linear map x -> alpha x, whose kernel map is exactly K -> alpha^2 K,
Theta -> alpha^2 Theta and which keeps the branch Gaussian, as ``FanInSum`` requires (an
elementwise ``ABRelu(alpha, alpha)`` computes the same but marks its output non-Gaussian). (Folding
alpha into the branch Dense's ``W_std``/``b_std`` gives the same NNGP and the same NTK in the
ntk parameterization, but not in the standard one, whose raw-parameter gradients of
alpha z_l carry alpha^2.) Batch normalization has no per-pair kernel (neural-tangents has
none either): `stax_network` raises for ``norm="batch"``.

Activations: relu, leaky_relu (0.01), abs, erf, gelu (exact) and linear map to
neural-tangents' analytic layers; tanh, sigmoid and softplus use ``ElementwiseNumerical``
(Gauss-Hermite with ``deg`` nodes, nt's own accuracy: ~1e-7 relative for tanh at deg=200 and
variances around 1).

`params_from_torch` copies the weights of a torch `Network` into the parameter tree of the
stax ``apply_fn`` (W transposed to (fan_in, fan_out), b to (1, fan_out)), so both compute the
same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradstats.spec import Architecture
from gradstats.theory._compat import x64_scope

NUMERICAL_DEG = 200


def _import_nt():
    try:
        import neural_tangents  # noqa: F401
        from neural_tangents import stax
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the neural-tangents backend needs the optional dependency: "
            "pip install 'gradstats[nt]' (jax < 0.6; see README)") from exc
    return stax


def _activation_layer(stax, name: str, deg: int):
    import jax
    import jax.numpy as jnp

    analytic = {
        "relu": stax.Relu, "abs": stax.Abs, "erf": stax.Erf, "gelu": stax.Gelu,
        "linear": stax.Identity,
    }
    if name in analytic:
        return analytic[name]()
    if name == "leaky_relu":
        from gradstats.activations import LEAKY_RELU_SLOPE

        return stax.LeakyRelu(LEAKY_RELU_SLOPE)
    numerical = {
        "tanh": (jnp.tanh, lambda x: 1.0 - jnp.tanh(x) ** 2),
        "sigmoid": (jax.nn.sigmoid, lambda x: jax.nn.sigmoid(x) * (1.0 - jax.nn.sigmoid(x))),
        "softplus": (jax.nn.softplus, jax.nn.sigmoid),
    }
    if name in numerical:
        import warnings

        fn, df = numerical[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return stax.ElementwiseNumerical(fn, deg=deg, df=df)
    raise ValueError(f"no neural-tangents layer for activation {name!r}")


# The composition as a nested plan, read by both `stax_network` and `params_from_torch` so the
# layers and the parameter tree cannot drift apart. Items: ("dense", l) dense layer l (1-based),
# ("phi",), ("layer_norm",), ("scale",) x -> alpha x, ("residual", plan) h + branch(h).
Plan = list[tuple[Any, ...]]


def _plan(arch: Architecture) -> Plan:
    if arch.norm == "batch":
        raise NotImplementedError(
            "norm='batch' has no per-pair kernel in neural-tangents (nor in gradstats: batch "
            "statistics couple the examples); see gradstats.theory.batchnorm")
    if arch.norm not in ("none", "layer"):
        raise ValueError(f"no neural-tangents layer for norm {arch.norm!r}")
    pre: Plan = ([("layer_norm",)] if arch.norm == "layer" else []) + [("phi",)]
    plan: Plan = [("dense", 1)]
    for l in range(2, arch.depth + 1):
        if arch.residual:
            plan.append(("residual", [*pre, ("dense", l), ("scale",)]))
        else:
            plan += [*pre, ("dense", l)]
    if arch.depth >= 1:
        plan += [*pre, ("dense", arch.n_layers)]
    return plan


def _build(plan: Plan, leaf: Callable[[tuple[Any, ...]], Any],
           residual: Callable[[Any], Any], serial: Callable[[list], Any]) -> Any:
    out = [residual(_build(item[1], leaf, residual, serial)) if item[0] == "residual"
           else leaf(item) for item in plan]
    return serial(out)


def stax_network(arch: Architecture, deg: int = NUMERICAL_DEG):
    """(init_fn, apply_fn, kernel_fn) of ``arch`` in neural-tangents' stax."""
    stax = _import_nt()
    w_std = math.sqrt(arch.sigma_w2)
    b_std = math.sqrt(arch.sigma_b2) if arch.bias else None
    alpha = arch.alpha

    def leaf(item):
        kind = item[0]
        if kind == "dense":
            return stax.Dense(arch.fan_out(item[1]), W_std=w_std, b_std=b_std,
                              parameterization=arch.parameterization)
        if kind == "phi":
            return _activation_layer(stax, arch.activation, deg)
        if kind == "layer_norm":
            from gradstats.layers.norm import LAYER_NORM_EPS

            return stax.LayerNorm(axis=-1, eps=LAYER_NORM_EPS)
        if kind == "scale":
            return stax.DotGeneral(rhs=alpha)  # the constant linear map x -> alpha x
        raise AssertionError(kind)  # pragma: no cover

    def residual(branch):
        return stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(), branch),
                           stax.FanInSum())

    return _build(_plan(arch), leaf, residual, lambda layers: stax.serial(*layers))


def kernels(arch: Architecture, x1, x2=None, *, x64: bool | None = None,
            deg: int = NUMERICAL_DEG) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of one readout unit from neural-tangents' ``kernel_fn``, each (n1, n2)."""
    import jax.numpy as jnp

    with x64_scope(x64):
        _, _, kernel_fn = stax_network(arch, deg)
        x1 = jnp.asarray(np.asarray(x1))
        x2 = None if x2 is None else jnp.asarray(np.asarray(x2))
        k = kernel_fn(x1, x2, ("nngp", "ntk"))
        return np.asarray(k.nngp), np.asarray(k.ntk)


def params_from_torch(model, arch: Architecture) -> list:
    """Parameter tree of `stax_network(arch)`'s ``apply_fn`` holding ``model``'s weights."""
    import jax.numpy as jnp

    def leaf(item):
        if item[0] != "dense":
            return ()
        l = item[1]
        w = jnp.asarray(model.weights[l - 1].detach().cpu().numpy().T)
        b = None
        if model.biases is not None:
            b = jnp.asarray(model.biases[l - 1].detach().cpu().numpy()[None, :])
        return (w, b)

    def residual(branch):  # serial(FanOut, parallel(Identity, branch), FanInSum)
        return [(), [(), branch], ()]

    return _build(_plan(arch), leaf, residual, list)
