"""The theory-vs-measurement comparisons, declared as data.

Each `Comparison` names the measured statistic it reads, the stored prediction it tests
against (computed per seed on the worker: `gradstats.predictions`), the test, the steps it
covers, the validity domain of the prediction (`gradstats.theory.validity`), the model-error
allowance and the largest error the test must be able to see for its "agree" to count.
`gradstats.results.compare` walks `COMPARISONS`; docs/compare.md's table is generated from it.
No torch, no JAX here.

Tests (`gradstats.results.stats`):

- ``log_ratio``: per seed ln(measured / predicted); H0 E[measured/predicted] = 1 within the
  allowance; Cox's estimate of ln E[ratio] with a Student-t interval (n_seeds - 1 dof).
- ``quadratic_form``: the per-seed null distribution (mean, variance) of a chi^2-like
  statistic is known from theory (f ~ GP); the seed mean of measured/mean is compared with
  the gamma distribution of that mean and variance (calibrated at any number of seeds).
- ``difference``: per-seed values minus prediction, Student-t, within the allowance.
- ``ks``: pooled whitened outputs vs N(0, 1), Kolmogorov-Smirnov.
- ``bound``: a deterministic bound; agrees when it holds on every seed (up to round-off).
- ``log_variance``: the variance over seeds of ln(measured) vs the predicted variance, on the
  log scale with a kurtosis-aware standard error.
- ``exponent``: OLS fit of ln(value) on ln(width) over widths and seeds; agrees when the
  t-interval widened by the allowance contains the predicted exponent.

Verdicts per cell (one configuration x layer x step): ``agree``, ``disagree``, ``outside``
(the cell lies outside the prediction's validity domain; its reason is recorded) and
``undetermined`` (the test could not have detected an error of ``max_detectable``: too few
seeds). Within each comparison (a family) p-values are Holm-adjusted before the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradstats.theory.validity import (
    BETA_COEF,
    BETA_MAX,
    BETA_MAX_OUTPUTS,
    LAZY_NTK_CHANGE_MAX,
    WIDTH_COEF,
    WIDTH_MIN,
)

DEFAULT_LEVEL = 0.01
MAX_RATIO = 2.0  # "agree" requires that a theory off by 2x would have been flagged (80% power)


@dataclass(frozen=True)
class Comparison:
    """One declared theory-vs-measurement comparison (a row of the table, a test family).

    measured / predicted: dataset variable names (predicted may be a tuple: null mean, var).
    test: see the module docstring. steps: ``"init"`` (step 0 only), ``"training"`` (every
    recorded step; step > 0 inside the lazy domain), ``"all"`` (every recorded step, no
    lazy condition: a statement about any network) or ``"last"``. domain: ``"infinite_width"``,
    ``"outputs"`` (the output distribution, a tighter beta), ``"hanin_nica"``, ``"lazy"`` or
    ``"any"`` (an exact statement) - `gradstats.theory.validity`. layers: ``"all"``,
    ``"hidden"`` (readout excluded) or ``"decay"``. allowance: ``"finite_width"`` (3 beta +
    10/width in ln), ``"rate"`` (the per-layer allowance spread over the fitted layers), ``"resolution"``,
    ``"lazy_loss"``, ``"exponent"`` or ``"none"``; at step > 0 the relative NTK change is
    added for kernel-based rows. max_detectable: a ratio (ratio tests) or an
    absolute difference (``difference``; for ``"decay"`` rows ln 2 / depth per layer).
    """

    name: str
    title: str
    measured: str
    predicted: str | tuple[str, str]
    test: str
    steps: str = "init"
    domain: str = "infinite_width"
    layers: str = "all"
    allowance: str = "finite_width"
    max_detectable: float = MAX_RATIO
    source: str = ""
    needs: str = ""  # what a sweep must have for this row (printed when it is skipped)


INFINITE_WIDTH = "gradstats.theory kernels (NNGP/NTK per layer, neural-tangents conventions)"

COMPARISONS: tuple[Comparison, ...] = (
    Comparison("grad_sq_norm", "weight-gradient norm given the measured readout gradient",
               "grad_sq_norm", "theory_grad_sq_norm", "log_ratio", steps="training",
               source=INFINITE_WIDTH),
    Comparison("bias_grad_sq_norm", "bias-gradient norm given the measured readout gradient",
               "bias_grad_sq_norm", "theory_bias_grad_sq_norm", "log_ratio", steps="training",
               source=INFINITE_WIDTH),
    Comparison("backward_q", "backward signal given the measured readout signal",
               "backward_q", "theory_backward_q", "log_ratio", steps="training",
               layers="hidden", source="signal propagation, gradient independence"),
    Comparison("forward_q", "mean squared pre-activation (length map)", "forward_q",
               "theory_forward_q", "log_ratio", layers="hidden", source="NNGP diagonal"),
    Comparison("weight_sq_norm", "squared norm of the effective weights", "weight_sq_norm",
               "theory_weight_sq_norm", "log_ratio", domain="any", allowance="none",
               source="exact expectation at init"),
    Comparison("active_fraction", "fraction of active units", "active_fraction",
               "theory_active_fraction", "difference", layers="hidden", allowance="resolution",
               max_detectable=0.05, source="P(|phi'(h)| > 1e-6), h ~ N(0, q_l)"),
    Comparison("grad_sq_norm_marginal", "weight-gradient norm over outputs f ~ GP (unconditional)",
               "grad_sq_norm", ("theory_grad_sq_norm_null_mean", "theory_grad_sq_norm_null_var"),
               "quadratic_form", domain="outputs", source=INFINITE_WIDTH),
    Comparison("output_mean_sq", "mean squared output over f ~ GP", "output_mean_sq",
               ("theory_output_mean_sq_null_mean", "theory_output_mean_sq_null_var"),
               "quadratic_form", domain="outputs", source="NNGP"),
    Comparison("batch_loss", "minibatch loss over f ~ GP", "batch_loss",
               ("theory_batch_loss_null_mean", "theory_batch_loss_null_var"), "quadratic_form",
               domain="outputs", source="NNGP"),
    Comparison("nngp_output_var", "step-0 outputs whitened by the NNGP: mean z^2 = 1",
               "theory_nngp_whitened_output", "", "chi2_whitened", domain="outputs",
               source="NNGP"),
    Comparison("nngp_ks", "step-0 outputs whitened by the NNGP: Gaussian (KS)",
               "theory_nngp_whitened_output", "", "ks", domain="outputs", max_detectable=math.nan,
               source="NNGP"),
    Comparison("backward_q_decay", "decay rate of backward_q per layer (hidden layers)",
               "backward_q", "theory_backward_q", "difference", layers="decay",
               allowance="rate", source="signal propagation: ln chi_1 at the fixed point"),
    Comparison("grad_sq_norm_decay", "decay rate of grad_sq_norm per layer (layers 2..depth)",
               "grad_sq_norm", "theory_grad_sq_norm", "difference", layers="decay",
               allowance="rate", source="signal propagation"),
    Comparison("product_bound", "product bound >= gradient norm on every seed", "grad_sq_norm",
               "theory_product_bound", "bound", domain="any", allowance="none",
               max_detectable=math.nan, source="gradstats.theory.bounds.product_bound"),
    Comparison("relu_masked_bound", "relu masked bound >= gradient norm on every seed",
               "grad_sq_norm", "theory_relu_masked_bound", "bound", domain="any",
               allowance="none", max_detectable=math.nan,
               source="gradstats.theory.bounds.relu_masked_bound"),
    Comparison("ln_grad_sq_norm_var", "variance of ln grad_sq_norm over networks",
               "grad_sq_norm", "theory_ln_grad_sq_norm_var", "log_variance", domain="hanin_nica",
               allowance="none", source="Hanin & Nica 2019 (gradstats.theory.finite_width)",
               needs="a point in the Hanin-Nica setting (relu, Gaussian, no bias, batch_size 1, "
                     "teacher zero)"),
    Comparison("full_loss_lazy", "training loss vs the linearized network (lazy regime)",
               "full_loss", "theory_full_loss_lazy", "log_ratio", steps="training",
               domain="lazy", allowance="lazy_loss",
               source="Lee et al. 2019: wide networks train as their linearization",
               needs="training steps (steps > 0) and n_train <= 2048"),
    Comparison("batch_noise", "tr Sigma from one minibatch (paired sub-batch slope) vs the "
               "whole training set", "full_noise_trace_unbiased", "full_noise_trace", "log_ratio",
               steps="all", domain="any", allowance="none",
               source="sampling without replacement: E||g_b||^2 = ||G||^2 + "
                      "(N-b)/(b(N-1)) tr Sigma (docs/noise_scale.md)",
               needs='measure = ["per_example", "full_batch"]'),
    Comparison("ntk_init_exponent", "width exponent of the empirical-vs-analytic NTK error",
               "theory_ntk_init_rel_err", "", "exponent", allowance="exponent",
               max_detectable=math.nan, source="NTK fluctuations ~ width^-1/2",
               needs="at least 3 widths"),
    Comparison("ntk_change_exponent", "width exponent of the NTK change during training",
               "ntk_rel_change", "", "exponent", steps="last", domain="lazy",
               allowance="exponent", max_detectable=math.nan,
               source="lazy training: NTK change ~ width^-1/2 (Lee et al. 2019)",
               needs="at least 3 widths and training steps"),
)

EXPONENTS = {"ntk_init_exponent": -0.5, "ntk_change_exponent": -0.5}
EXPONENT_ALLOWANCE = 0.1  # fitted exponents agree within +-0.1 of the prediction


def by_name(name: str) -> Comparison:
    """The declared comparison called ``name``."""
    for comparison in COMPARISONS:
        if comparison.name == name:
            return comparison
    raise KeyError(f"no comparison {name!r}; known: {', '.join(c.name for c in COMPARISONS)}")


def allowance_text(comparison: Comparison) -> str:
    """The allowance of a comparison in words (docs and table)."""
    return {
        "finite_width": f"{BETA_COEF:g} beta + {WIDTH_COEF:g}/width in ln"
                        + (" + NTK change at step > 0" if comparison.steps == "training" else ""),
        "rate": f"2 ({BETA_COEF:g} beta + {WIDTH_COEF:g}/width) / layers spanned, per layer",
        "resolution": "1 / (batch x width): one unit-example pair",
        "lazy_loss": "NTK change x |ln(L_0 / L_t)|",
        "exponent": f"+-{EXPONENT_ALLOWANCE:g}",
        "none": "none",
    }[comparison.allowance]


def domain_text(comparison: Comparison) -> str:
    """The validity domain of a comparison in words (docs and table)."""
    text = {"infinite_width": f"depth/width <= {BETA_MAX:g}, width >= {WIDTH_MIN}",
            "hanin_nica": "relu, Gaussian, no bias, batch 1, target 0",
            "lazy": f"NTK change <= {LAZY_NTK_CHANGE_MAX:g}",
            "outputs": f"depth/width <= {BETA_MAX_OUTPUTS:g}",
            "any": "any network"}[comparison.domain]
    if comparison.steps == "training" and comparison.domain == "infinite_width":
        text += f"; step > 0: NTK change <= {LAZY_NTK_CHANGE_MAX:g}"
    return text
