"""The registry of statistics: each one's name, dims, long_name and units, declared once.

`simulate` records statistics under these names, `theory` predicts them under the same
names, `results.compare` pairs the two by walking this registry. No torch, no jax here.

``dims`` lists the statistic's own dims beyond the sweep axes and ``seed`` (which every
simulated statistic has): typically ``step`` and ``layer``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statistic:
    """A recorded quantity: ``dims`` beyond sweep axes and seed; ``theory`` if predicted."""

    name: str
    dims: tuple[str, ...]
    long_name: str
    units: str
    description: str
    theory: bool = False

    def attrs(self) -> dict[str, str]:
        """xarray variable attrs (``long_name``, ``units``, ``description``)."""
        return {"long_name": self.long_name, "units": self.units, "description": self.description}


REGISTRY: dict[str, Statistic] = {}


def register(stat: Statistic) -> Statistic:
    """Add ``stat`` to the registry; a name may be declared once only."""
    if stat.name in REGISTRY:
        raise ValueError(f"statistic {stat.name!r} is already registered")
    REGISTRY[stat.name] = stat
    return stat


def get(name: str) -> Statistic:
    """The registered statistic called ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown statistic {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


_SL = ("step", "layer")

# --- spine: recorded at every recorded step of every point -------------------------------
for _s in (
    Statistic("grad_sq_norm", _SL, "squared norm of weight gradient", "1",
              "||dL/dW_l||_F^2 of the minibatch loss wrt layer l's weight matrix", theory=True),
    Statistic("bias_grad_sq_norm", _SL, "squared norm of bias gradient", "1",
              "||dL/db_l||^2 of the minibatch loss wrt layer l's bias (NaN without bias)"),
    Statistic("forward_q", _SL, "mean squared pre-activation", "1",
              "mean over units and examples of h_l^2 (the length map q_l)", theory=True),
    Statistic("backward_q", _SL, "mean squared backward signal", "1",
              "mean over units and examples of (d loss_i / d h_l,i)^2, loss_i the per-example "
              "loss", theory=True),
    Statistic("active_fraction", _SL, "fraction of active units", "1",
              "fraction of (unit, example) pairs with |phi'(h_l)| > 1e-6 (hidden layers; "
              "1 for the linear readout)"),
    Statistic("weight_sq_norm", _SL, "squared norm of weights", "1",
              "||W_l||_F^2 of the effective weight (sigma_w/sqrt(fan_in) W under ntk)"),
    Statistic("batch_loss", ("step",), "minibatch loss", "1",
              "minibatch training loss at the recorded step, before the update"),
    Statistic("full_loss", ("step",), "full-batch training loss", "1",
              "loss over the whole training set at the recorded step"),
    Statistic("accuracy", ("step",), "training accuracy", "1",
              "fraction of the minibatch classified correctly (cross_entropy; NaN for mse)"),
    Statistic("output_mean_sq", ("step",), "mean squared network output", "1",
              "mean over examples and outputs of f(x)^2 on the minibatch", theory=True),
    Statistic("diverged", (), "diverged", "1",
              "1 if the loss or a gradient became inf/nan (values kept as they were), else 0"),
    Statistic("diverged_step", (), "step of divergence", "step",
              "first step with a non-finite value (-1 if none)"),
    Statistic("wall_time", (), "compute time", "s", "seconds spent computing the point"),
):
    register(_s)

# --- per-example engine (issue 4) ---------------------------------------------------------
# Estimators "per_example" and "ntk" (gradstats.simulate.engine_estimators). Sigma is the
# per-example gradient covariance over all parameters: 1/B sum_i (g_i - gbar)(g_i - gbar)^T.
for _s in (
    Statistic("per_example_grad_sq_norm", ("step", "layer", "sample"),
              "per-example squared norm of weight gradient", "1",
              "||d loss_i / dW_l||_F^2 wrt the raw W_l for each minibatch example i"),
    Statistic("per_example_bias_grad_sq_norm", ("step", "layer", "sample"),
              "per-example squared norm of bias gradient", "1",
              "||d loss_i / db_l||^2 for each minibatch example i (NaN without bias)"),
    Statistic("grad_noise_trace", ("step",), "trace of gradient noise covariance", "1",
              "tr Sigma, Sigma = 1/B sum_i (g_i - gbar)(g_i - gbar)^T of per-example "
              "gradients g_i over all parameters, gbar the minibatch mean gradient"),
    Statistic("noise_eigenvalues", ("step", "rank"), "gradient noise covariance eigenvalues",
              "1", "eigenvalues of Sigma in descending order; rank dim has length batch_size "
              "(rank <= B-1, trailing values are 0)"),
    Statistic("grad_noise_scale", ("step",), "simple gradient noise scale", "examples",
              "B_simple = tr Sigma / ||gbar||^2 (McCandlish et al. 2018), gbar the minibatch "
              "mean gradient"),
    Statistic("layer_grad_noise_trace", ("step", "layer"),
              "trace of layer gradient noise covariance", "1",
              "tr Sigma_l of layer l's parameters (weight and bias); sums over layers to "
              "grad_noise_trace"),
    Statistic("layer_grad_noise_scale", ("step", "layer"), "layer gradient noise scale",
              "examples", "tr Sigma_l / ||gbar_l||^2 for layer l's parameters (weight and bias)"),
    Statistic("ntk_rel_change", ("step",), "relative change of empirical NTK", "1",
              "||Theta_t - Theta_0||_F / ||Theta_0||_F of the empirical NTK (traced over "
              "outputs) on a fixed probe batch: the first min(64, n_train) training inputs"),
    Statistic("ntk_trace", ("step",), "trace of empirical NTK", "1",
              "sum over the probe batch of Theta_t(x, x), traced over outputs"),
):
    register(_s)

# --- gradient distributions (issue 5) -----------------------------------------------------
