"""Parameterization guard of the cnn: torch weights copied into neural-tangents' `stax`
network give the same outputs and the same empirical NTK (needs the nt environment)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gradstats.simulate import build_model, engine
from gradstats.spec import Architecture

CASES = list(itertools.product(("SAME", "VALID", "CIRCULAR"), ("flatten", "gap"),
                               ("ntk", "standard")))


def nt_network(nt, arch: Architecture):
    stax = nt.stax
    w_std, b_std = float(np.sqrt(arch.sigma_w2)), float(np.sqrt(arch.sigma_b2))
    k = (arch.kernel_size,) * 2
    conv = dict(padding=arch.padding, W_std=w_std, b_std=b_std,
                parameterization=arch.parameterization)
    layers = [stax.Conv(arch.width, k, **conv)]
    for _ in range(arch.depth - 1):
        layers += [stax.Erf(), stax.Conv(arch.width, k, **conv)]
    layers += [stax.Erf(), stax.Flatten() if arch.readout == "flatten" else stax.GlobalAvgPool(),
               stax.Dense(arch.output_dim, w_std, b_std, parameterization=arch.parameterization)]
    return stax.serial(*layers)


def nt_params(jnp, model, init_params):
    """torch (C_out, C_in, kh, kw) kernels -> HWIO; the readout's (out, C*H*W) columns from
    torch's channel-major flatten to nt's (H, W, C) order; biases reshaped as nt's."""
    arch = model.arch
    out, i = [], 0
    for p in init_params:
        if p == ():
            out.append(())
            continue
        w, b = model.weights[i], model.biases[i]
        wt = w.detach()
        if wt.ndim == 4:
            wt = wt.permute(2, 3, 1, 0)
        elif arch.readout == "flatten":
            h, wd = arch.spatial_shape(arch.depth)
            wt = wt.reshape(wt.shape[0], arch.width, h, wd).permute(0, 2, 3, 1).reshape(
                wt.shape[0], -1).T
        else:
            wt = wt.T
        out.append((jnp.asarray(wt.numpy()), jnp.asarray(b.detach().numpy()).reshape(p[1].shape)))
        i += 1
    return out


@pytest.mark.nt
@pytest.mark.parametrize(("padding", "readout", "parameterization"), CASES)
def test_cnn_matches_neural_tangents(padding, readout, parameterization):
    nt = pytest.importorskip("neural_tangents")
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    arch = Architecture(width=4, depth=2, activation="erf", sigma_w2=1.5, sigma_b2=0.3,
                        parameterization=parameterization, architecture="cnn",
                        kernel_size=3, padding=padding, readout=readout, input_dim=2,
                        image_shape=(6, 5), output_dim=2)
    model = build_model(arch, 0, dtype=torch.float64)
    init_fn, apply_fn, _ = nt_network(nt, arch)
    x = torch.randn(3, 2, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_nt = jnp.asarray(x.permute(0, 2, 3, 1).numpy())
    _, init_params = init_fn(jax.random.PRNGKey(0), x_nt.shape)
    params = nt_params(jnp, model, init_params)
    np.testing.assert_allclose(np.asarray(apply_fn(params, x_nt)), model(x).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    ntk_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)
    ref = np.asarray(ntk_fn(x_nt, None, params))  # (n, n, K, K)
    got = engine.empirical_ntk_model(model, x, classes="full").numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10)
