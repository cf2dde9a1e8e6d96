"""Per-example gradient Grams of conv layers: from unfolded patches, or by materializing.

A conv layer z_{i,p} = m W a_{i,p} (+ m_b b) (patch a_{i,p} of example i at output pixel p,
(F,) with F = C_in k^d; W reshaped to (C, F)) has, for a per-example target t_i with
backward signal delta_{i,p} = dt_i/dz_{i,p} (C,), the raw-weight gradient

    dt_i/dW = m * sum_p delta_{i,p} a_{i,p}^T        (C, F),

so the weight Gram of two examples is (without m^2)

    G_ij = <sum_p delta_ip a_ip^T, sum_q delta_jq a_jq^T> = sum_{p,q} (a_ip . a_jq)(delta_ip . delta_jq).

Two ways to compute it, chosen per layer by their multiply-add counts (`choose_route`), for
B1 x B2 examples, P output pixels, K targets traced (``classes="trace"``) or kept in pairs
(``"full"``):

- ``"patch"``, the right-hand side: never forms a per-example gradient;
  cost  B1 B2 P^2 (F + K C)   (trace)   or   B1 B2 P^2 (F + K^2 C + K^2)   (full),
  memory bounded by blocks of rows (`MAX_BLOCK_ELEMENTS` entries of the (b, B2, P, P) pair
  tensors at a time).
- ``"materialize"``: g_i = sum_p delta_ip a_ip^T (the per-example gradient of this layer,
  (K, C, F) per example), then their inner products;
  cost  (B1 + B2) K P C F + B1 B2 K C F   (trace)   or   (B1 + B2) K P C F + B1 B2 K^2 C F
  (full), memory (B1 + B2) C F traced (one target at a time) or (B1 + B2) K C F full.

Patches win when P^2 (F + K C) < K C F (P + B) / B roughly: few pixels and wide layers;
on 8 x 8 images at batch 32-128 materializing is cheaper at every width up to thousands of
channels, so the patch route serves short 1-D signals and very wide layers. The diagonal
alone (per-example squared norms, `weight_sq_norms`) costs B P^2 (F + K C) by patches and
B K P C F by materializing: patches win there once P < C roughly.

The bias gradient m_b sum_p delta_ip needs no patches: its Gram is that of the pixel-summed
signals (`pixel_sum`). Tensors: a (B, P, F) patches (`gradstats.layers.conv.Conv.patches`),
d (K, B, P, C) signals (`to_pixel_major` of the (K, B, C, *spatial) autograd output).
"""

from __future__ import annotations

from typing import Literal

import torch

Route = Literal["patch", "materialize"]
# Largest (rows, B2, [K, K,] P, P) pair tensor of the patch route, in entries (128 MiB float64).
MAX_BLOCK_ELEMENTS = 2**24


def to_pixel_major(d: torch.Tensor) -> torch.Tensor:
    """(K, B, C, *spatial) conv-output signals -> (K, B, P, C), pixels row-major."""
    k, b, c = d.shape[:3]
    return d.reshape(k, b, c, -1).transpose(2, 3)


def pixel_sum(d: torch.Tensor) -> torch.Tensor:
    """(K, B, P, C) -> (K, B, C): the bias gradient's signal sum_p delta_p."""
    return d.sum(2)


def gram_costs(b1: int, b2: int, p: int, f: int, c: int, k: int, full: bool = False
               ) -> dict[str, int]:
    """Multiply-adds of the two routes for a (B1, B2) weight Gram (module docstring)."""
    pairs = k * k if full else k
    patch = b1 * b2 * p * p * (f + (k * k * c + k * k if full else k * c))
    materialize = (b1 + b2) * k * p * c * f + b1 * b2 * pairs * c * f
    return {"patch": patch, "materialize": materialize}


def diag_costs(b: int, p: int, f: int, c: int, k: int) -> dict[str, int]:
    """Multiply-adds of the per-example squared norms (the Gram's diagonal) by each route."""
    return {"patch": b * p * p * (f + k * c), "materialize": b * k * p * c * f + b * k * c * f}


def choose_route(costs: dict[str, int]) -> Route:
    """The cheaper route (patches on a tie: less memory)."""
    return "patch" if costs["patch"] <= costs["materialize"] else "materialize"


def materialize(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Per-example gradients of the raw weight without multiplier: (K, B, C * F), one batched
    matrix product (C, P) @ (P, F) per example and target."""
    if d.shape[0] == 1:  # no stacking copy for a single target
        g = torch.bmm(d[0].transpose(1, 2), a).unsqueeze(0)
    else:
        g = torch.stack([torch.bmm(dk.transpose(1, 2), a) for dk in d])
    return g.reshape(g.shape[0], g.shape[1], -1)


def _rows_per_block(b2: int, p: int, pairs: int) -> int:
    return max(1, MAX_BLOCK_ELEMENTS // max(1, b2 * pairs * p * p))


def weight_gram(a1: torch.Tensor, d1: torch.Tensor, a2: torch.Tensor, d2: torch.Tensor,
                full: bool = False, route: Route | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """sum_{p,q} (a1_ip . a2_jq)(d1_ip . d2_jq) traced over the K targets: (B1, B2), or per
    target pair (B1, B2, K, K) with ``full``. a: (B, P, F), d: (K, B, P, C). ``route`` None
    takes the cheaper one (`gram_costs`). ``dtype`` (e.g. float64): the Gram's products and
    sums in it; materialized per-example gradients are summed over pixels in the features'
    own dtype first (one rounding of each gradient entry, like the float32 signals
    themselves), the patch route casts the features."""
    k, b1, p, c = d1.shape
    b2, f = a2.shape[0], a1.shape[2]
    same = a2 is a1 and d2 is d1
    if route is None:
        route = choose_route(gram_costs(b1, b2, p, f, c, k, full))
    if route == "materialize" and full:
        g1 = materialize(a1, d1)
        g2 = g1 if same else materialize(a2, d2)
        if dtype is not None:
            g1, g2 = g1.to(dtype), g2.to(dtype)
        return torch.einsum("kin,mjn->ijkm", g1, g2)
    if route == "materialize":  # one target at a time: memory B C F, not K B C F
        total = None
        for t in range(k):
            g1 = materialize(a1, d1[t:t + 1])[0]
            g2 = g1 if same else materialize(a2, d2[t:t + 1])[0]
            if dtype is not None:
                g1, g2 = g1.to(dtype), g2.to(dtype)
            term = g1 @ g2.T
            total = term if total is None else total + term
        return total
    if route != "patch":
        raise ValueError(f"unknown route {route!r}; choose 'patch' or 'materialize'")
    if dtype is not None:
        a1, d1 = a1.to(dtype), d1.to(dtype)
        a2, d2 = (a1, d1) if same else (a2.to(dtype), d2.to(dtype))
    rows = _rows_per_block(b2, p, k * k if full else 1)
    out = []
    for start in range(0, b1, rows):
        sl = slice(start, start + rows)
        aa = torch.einsum("ipf,jqf->ijpq", a1[sl], a2)
        if full:
            dd = torch.einsum("kipc,mjqc->ijkmpq", d1[:, sl], d2)
            out.append(torch.einsum("ijpq,ijkmpq->ijkm", aa, dd))
        else:
            dd = torch.einsum("kipc,kjqc->ijpq", d1[:, sl], d2)
            out.append((aa * dd).sum((-1, -2)))
    return torch.cat(out, 0)


def weight_sq_norms(a: torch.Tensor, d: torch.Tensor, route: Route | None = None
                    ) -> torch.Tensor:
    """||sum_p d_ip a_ip^T||_F^2 summed over the K targets: (B,), the Gram's diagonal in
    B P^2 (F + K C) (patches) or B K P C F (materialized), whichever is cheaper."""
    k, b, p, c = d.shape
    if route is None:
        route = choose_route(diag_costs(b, p, a.shape[2], c, k))
    if route == "materialize":
        g = materialize(a, d)
        return (g * g).sum((0, 2))
    aa = torch.einsum("ipf,iqf->ipq", a, a)
    dd = torch.einsum("kipc,kiqc->ipq", d, d)
    return (aa * dd).sum((1, 2))


def summed_grads(a: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_i sum_p d_ip a_ip^T (C, F), sum_i sum_p d_ip (C,)) for the first target: the
    batch-summed raw weight and bias gradients without multipliers."""
    return torch.einsum("bpc,bpf->cf", d[0], a), d[0].sum((0, 1))
