"""linearized_sgd: function-space SGD of the linearized network, against parameter-space SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradstats import theory


def _linear_model_sgd(phi, w0, y, batches, lr, record, momentum, loss):
    """torch.optim.SGD on f = phi W (W (p, out)), whose NTK is phi phi^T (x) I exactly.

    Returns (f at the recorded steps (R, n, out), mean training loss there (R,)).
    """
    phi_t = torch.tensor(phi)
    y_t = torch.tensor(y)
    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum)

    def per_example(f, target):
        if loss == "mse":
            return 0.5 * ((f - target) ** 2).sum(dim=1)
        return torch.nn.functional.cross_entropy(f, target, reduction="none")

    fs, losses = [], []
    for t in range(record[-1] + 1):
        if t in record:
            with torch.no_grad():
                f = phi_t @ w
                fs.append(f.numpy().copy())
                losses.append(float(per_example(f, y_t).mean()))
        if t == record[-1]:
            break
        idx = torch.as_tensor(batches[t])
        opt.zero_grad()
        per_example(phi_t[idx] @ w, y_t[idx]).mean().backward()
        opt.step()
    return np.stack(fs), np.array(losses)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("repeats", [False, True])
def test_exact_for_a_model_linear_in_its_parameters(loss, momentum, repeats):
    rng = np.random.default_rng(7)
    n, p, n_out, batch, steps = 12, 20, 3, 4, 25
    phi = rng.normal(size=(n, p))
    w0 = 0.5 * rng.normal(size=(p, n_out))
    y = rng.normal(size=(n, n_out)) if loss == "mse" else rng.integers(0, n_out, size=n)
    if repeats:
        batches = rng.integers(0, n, size=(steps, batch))
        batches[:, 1] = batches[:, 0]  # every minibatch holds a repeated example
    else:
        batches = np.stack([rng.choice(n, batch, replace=False) for _ in range(steps)])
    record = [0, 1, 7, 20, 25]
    lr = 0.02
    f_ref, loss_ref = _linear_model_sgd(phi, w0, y, batches, lr, record, momentum, loss)
    out = theory.linearized_sgd(phi @ phi.T, phi @ w0, y, batches, lr, record, momentum=momentum,
                                loss=loss)
    assert out["f"].shape == (len(record), n, n_out) and out["full_loss"].shape == (len(record),)
    np.testing.assert_allclose(out["f"], f_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["full_loss"], loss_ref, rtol=1e-10)
    assert loss_ref[-1] < 0.8 * loss_ref[0]  # the dynamics moved: the equality is not vacuous


def test_record_semantics_and_validation():
    rng = np.random.default_rng(8)
    ntk = np.eye(4) + 0.1
    f0 = rng.normal(size=(4, 1))
    y = np.zeros((4, 1))
    batches = np.array([[0, 1], [2, 3], [0, 2]])
    out = theory.linearized_sgd(ntk, f0, y, batches, 0.1, [0, 3])
    np.testing.assert_array_equal(out["f"][0], f0)  # step 0 is the state before any update
    # one update by hand: f <- f - lr Theta[:, b] (f_b - y_b) / B
    one = theory.linearized_sgd(ntk, f0, y, batches, 0.1, [1])
    np.testing.assert_allclose(one["f"][0], f0 - 0.1 * ntk[:, [0, 1]] @ f0[[0, 1]] / 2)
    np.testing.assert_allclose(one["full_loss"], [0.5 * np.mean(one["f"][0] ** 2)])
    with pytest.raises(ValueError, match="record"):
        theory.linearized_sgd(ntk, f0, y, batches, 0.1, [0, 4])
    with pytest.raises(ValueError, match="record"):
        theory.linearized_sgd(ntk, f0, y, batches, 0.1, [2, 1])
    with pytest.raises(ValueError, match="batch indices"):
        theory.linearized_sgd(ntk, f0, y, batches + 2, 0.1, [1])
    with pytest.raises(ValueError, match="mse targets"):
        theory.linearized_sgd(ntk, f0, np.zeros(4), batches, 0.1, [1])
    with pytest.raises(ValueError, match="labels"):
        theory.linearized_sgd(ntk, f0, np.array([0, 1, 0, 1]), batches, 0.1, [1],
                              loss="cross_entropy")
    with pytest.raises(ValueError, match="unknown loss"):
        theory.linearized_sgd(ntk, f0, y, batches, 0.1, [1], loss="hinge")


@pytest.mark.slow
def test_wide_network_trains_lazily():
    """A width-4096 ntk-parameterized relu network follows its linearization.

    Tolerance: the loss decrease is driven by the kernel (each step lowers L by about
    lr g^T Theta_t g / B), so replacing Theta_t by Theta_0 changes the decrease up to step t by a
    relative amount of order the NTK change delta_t = ||Theta_t - Theta_0||_F / ||Theta_0||_F
    that the run measures (`ntk_rel_change`, which grows along training). We allow
    |L_t - L_t^lin| <= 2 delta_t |L_0 - L_t^lin|, the factor 2 covering the second-order (lr^2)
    terms of the nonlinear step; over three seeds the measured ratio
    |L_t - L_t^lin| / (delta_t |L_0 - L_t^lin|) was 0.45-0.97, with delta_10 about 0.004.
    """
    from gradstats.simulate.data import load_data
    from gradstats.simulate.engine import empirical_ntk_model
    from gradstats.simulate.model import build_model
    from gradstats.simulate.training import _BatchSampler, derive_seeds, simulate_point
    from gradstats.spec import Architecture, Data, Point, Training

    arch = Architecture(width=4096, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.05,
                        parameterization="ntk", input_dim=16, output_dim=1)
    training = Training(batch_size=16, loss="mse", lr=0.5, steps=10, record=(0, 1, 3, 6, 10))
    # n_train = 64 = the `ntk` estimator's probe size, so ntk_rel_change is on the training set
    point = Point(arch=arch, training=training, data=Data(input_dim=16, n_train=64),
                  dtype="float64", device="cpu", measure=("ntk",))
    run = simulate_point(point)

    # the run's own initial network, data and minibatches, from the point's seeds
    seeds = derive_seeds(point)
    data = load_data(point.data, "mse", seeds.data)
    sampler = _BatchSampler(len(data.x), training.batch_size, seeds.batches)
    batches = np.stack([sampler.next() for _ in range(training.steps)])
    model = build_model(arch, seeds.init, dtype=torch.float64)
    x = torch.tensor(data.x)
    with torch.no_grad():
        f0 = model(x).numpy()
    ntk0 = empirical_ntk_model(model, x).numpy() / arch.output_dim
    lin = theory.linearized_sgd(ntk0, f0, data.y, batches, training.lr, training.record)

    measured, predicted = run.values["full_loss"], lin["full_loss"]
    delta = run.values["ntk_rel_change"]
    assert predicted[0] == pytest.approx(measured[0], rel=1e-12)  # same network, same data
    assert measured[-1] < 0.5 * measured[0]  # it trained: a frozen-f prediction would miss by half
    assert np.all(delta < 0.02)  # the lazy regime the prediction claims
    assert np.all(np.abs(measured - predicted) <= 2 * delta * np.abs(predicted[0] - predicted))
    np.testing.assert_allclose(predicted, measured, rtol=0.02)


def test_columns_of_the_kernel_are_used_as_given():
    """The fast path gathers Theta[:, batch] as rows of Theta^T: the same numbers as the
    obvious column gather (checked on a non-symmetric matrix, so no symmetry is assumed)."""
    rng = np.random.default_rng(3)
    n, steps, batch, lr, momentum = 40, 30, 5, 0.03, 0.5
    ntk = rng.normal(size=(n, n)) + n * np.eye(n)
    f0, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    batches = rng.integers(0, n, size=(steps, batch))
    f, u, expected = f0.copy(), np.zeros_like(f0), []
    for t in range(steps + 1):
        expected.append(f)
        if t == steps:
            break
        idx = batches[t]
        u = momentum * u + ntk[:, idx] @ (f[idx] - y[idx]) / batch
        f = f - lr * u
    out = theory.linearized_sgd(ntk, f0, y, batches, lr, np.arange(steps + 1),
                                momentum=momentum)
    np.testing.assert_allclose(out["f"], np.stack(expected), rtol=1e-12, atol=0)
