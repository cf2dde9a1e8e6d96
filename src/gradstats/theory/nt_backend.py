"""neural-tangents as an alternative backend (optional dependency, imported lazily).

neural-tangents 0.6.5 needs jax < 0.6, so it lives in its own environment (``.venv-nt``, the
``nt`` extra). `stax_network` builds the same network as `gradstats.simulate.build_model`:
``Dense(width, W_std=sigma_w, b_std=sigma_b or None, parameterization)`` + activation, repeated
``depth`` times, then ``Dense(output_dim, ...)``. Activations: relu, leaky_relu (0.01), abs,
erf, gelu (exact) and linear map to neural-tangents' analytic layers; tanh, sigmoid and
softplus use ``ElementwiseNumerical`` (Gauss-Hermite with ``deg`` nodes, nt's own accuracy:
~1e-7 relative for tanh at deg=200 and variances around 1).

`params_from_torch` copies the weights of a torch `MLP` into the parameter tree of the stax
``apply_fn`` (W transposed to (fan_in, fan_out), b to (1, fan_out)), so both compute the same
function.
"""

from __future__ import annotations

import math

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


def stax_network(arch: Architecture, deg: int = NUMERICAL_DEG):
    """(init_fn, apply_fn, kernel_fn) of ``arch`` in neural-tangents' stax."""
    stax = _import_nt()
    w_std = math.sqrt(arch.sigma_w2)
    b_std = math.sqrt(arch.sigma_b2) if arch.bias else None
    layers = []
    for _ in range(arch.depth):
        layers += [stax.Dense(arch.width, W_std=w_std, b_std=b_std,
                              parameterization=arch.parameterization),
                   _activation_layer(stax, arch.activation, deg)]
    layers.append(stax.Dense(arch.output_dim, W_std=w_std, b_std=b_std,
                             parameterization=arch.parameterization))
    return stax.serial(*layers)


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

    params: list = []
    for l in range(arch.n_layers):
        w = jnp.asarray(model.weights[l].detach().cpu().numpy().T)
        b = None
        if model.biases is not None:
            b = jnp.asarray(model.biases[l].detach().cpu().numpy()[None, :])
        params.append((w, b))
        if l < arch.n_layers - 1:
            params.append(())
    return params
