"""Per-image diagonal recursion of a convolutional network: forward variances and backward
signals, each averaged over pixels (what ``forward_q`` / ``backward_q`` of a cnn measure).

Network (the contract's numbering): layer 1 = Conv(x); layer l = 2..depth: Conv(phi(h_{l-1}));
layer L = depth + 1: Dense(pool(phi(h_depth))), pool = Flatten or GlobalAvgPool.

Forward: the per-pixel variance V_l(p) = K_l(x, x)(p, p) of a conv stream follows the
diagonal map V_l = sigma_w^2 conv(E[phi(h_{l-1})^2]) + sigma_b^2 (`ops.conv_diag`; V_0 = the
channel mean of x^2). The readout variance is sigma_w^2 mean_p E[phi^2] + sigma_b^2 after
Flatten; after global average pooling it needs the image's full pixel covariance, so it is
the diagonal of the NNGP computed image by image (`driver.recursion`, one image at a time).

Backward (gradient independence, as for the MLP): B_l(p) = sum over channels of
E[(df/dh_l(c, p))^2] for one readout unit. Below the readout,
B_depth(p) = sigma_w^2 E[phi'(h_depth(p))^2] / P (Flatten) or / P^2 (GAP), and through a conv
layer B_{l-1} = E[phi'(h_{l-1})^2] * sigma_w^2 conv^T(B_l), conv^T the adjoint of the
diagonal conv map (transposed padding included; obtained by ``jax.vjp``). Returned per layer:
``backward`` = mean over pixels of B_l (so that dividing by the channel count gives the mean
over channels and pixels), 1 at the readout; ``chi`` = backward_l / backward_{l+1} (1 at the
readout); ``q`` = mean over pixels of V_l, the readout's K_L(x, x) last.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gradstats.layers import NetworkSpec, hyper, network_spec
from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope
from gradstats.theory.conv import driver, ops


def diag_recursion(arch: Architecture, x, *, x64: bool | None = None,
                   quadrature: act.Quadrature | None = None) -> dict[str, np.ndarray]:
    """``q``, ``chi``, ``backward``, each (depth+1, n), for images x (n, C, *S) (module
    docstring)."""
    from gradstats.theory.conv.inputs import check_images

    x = np.ascontiguousarray(x, dtype=float)
    check_images(x)
    arch = arch.with_image(x.shape[1:], "x")
    act.check_activation(arch.activation)
    quad = quadrature or act.DEFAULT_QUADRATURE
    with x64_scope(x64):
        out = _diag_jit(jnp.asarray(x), hyper(arch), arch=arch, net=network_spec(arch),
                        quad=quad)
        return {k: np.asarray(v) for k, v in out.items()}


@partial(jax.jit, static_argnames=("arch", "net", "quad"))
def _diag_jit(x, hp, *, arch: Architecture, net: NetworkSpec, quad):
    hp = {name: jnp.asarray(value, x.dtype) for name, value in hp.items()}
    sw2, sb2 = hp["sw2"], hp["sb2"]
    d = x.ndim - 2
    size = (arch.kernel_size,) * d
    v = ops.input_variances(x)  # (n, *S)
    variances, dots = [], []  # V_l and E[phi'(h_l)^2] per conv layer
    conv_inputs = []  # E[phi(h_{l-1})^2] (the input's mean square for layer 1)
    a = v
    for _ in range(arch.depth):
        conv_inputs.append(a)
        v = sw2 * ops.conv_diag(a, size, arch.padding) + sb2
        a, dot = act.diag(arch.activation, v, quad)
        variances.append(v)
        dots.append(dot)
    n_pixels = np.prod(v.shape[1:])
    if arch.readout == "flatten":
        q_readout = sw2 * ops.mean_pixels(a, d) + sb2
        b = sw2 * dots[-1] / n_pixels
    else:
        def one(xi):
            return driver.recursion(xi[None], xi[None], hp, net=net, same=True, mode="nngp",
                                    quad=quad)[0, 0]

        q_readout = jax.lax.map(one, x)
        b = sw2 * dots[-1] / n_pixels**2
    backward = [b]
    for layer in range(arch.depth, 1, -1):  # B_{l-1} from B_l through conv layer l
        _, transpose = jax.vjp(lambda t: ops.conv_diag(t, size, arch.padding),
                               conv_inputs[layer - 1])
        (b,) = transpose(b)
        b = dots[layer - 2] * sw2 * b
        backward.append(b)
    backward = [ops.mean_pixels(b, d) for b in backward[::-1]]
    backward.append(jnp.ones_like(q_readout))
    backward = jnp.stack(backward)
    q = jnp.stack([ops.mean_pixels(v, d) for v in variances] + [q_readout])
    chi = jnp.concatenate([backward[:-1] / backward[1:], jnp.ones_like(backward[:1])], axis=0)
    return {"q": q, "chi": chi, "backward": backward}


conv_diag_recursion = diag_recursion  # the name `gradstats.theory` exports
