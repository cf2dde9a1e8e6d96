"""Cost of one recorded step of the `distribution` and `directions` estimators vs the spine.

Width 256, depth 3, digits/sphere, batch 32, cross-entropy. Median of REPEATS timings of
`update` on the same snapshot (a fresh step cache each time, so nothing is reused), printed
with the ratio to `spine_values` on that snapshot.
"""
import dataclasses
import statistics
import sys
import time

import torch

from gradstats.simulate.data import load_data
from gradstats.simulate.estimators import RunContext, StepCache, StepSnapshot, make_estimator
from gradstats.simulate.model import build_model
from gradstats.simulate.training import per_example_loss_fn, spine_values
from gradstats.spec import Architecture, Data, Point, Training

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def setup(data: str):
    arch = Architecture(width=256, depth=3, input_dim=64, output_dim=10)
    point = Point(arch=arch, training=Training(batch_size=32, loss="cross_entropy", steps=0),
                  data=Data(name=data))
    ds = load_data(point.data, "cross_entropy", 0)
    x, y = torch.as_tensor(ds.x, dtype=torch.float32), torch.as_tensor(ds.y)
    model = build_model(arch, 0)
    loss_fn = per_example_loss_fn("cross_entropy")
    ctx = RunContext(point=point, model=model, device=torch.device("cpu"), dtype=torch.float32,
                     x_train=x, y_train=y, loss_fn=loss_fn, seed=0)
    xb, yb = x[:32], y[:32]
    fwd = model.forward_all(xb, retain_preact_grad=True)
    loss = loss_fn(fwd.output, yb).mean()
    model.zero_grad()
    loss.backward()
    snap = StepSnapshot(step=0, model=model, x=xb, y=yb, forward=fwd, loss=loss.detach(),
                        weight_grads=[w.grad for w in model.weights],
                        bias_grads=[b.grad for b in model.biases])
    return ctx, snap


def timeit(fn) -> float:
    ts = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


print(f"{'data':8s} {'what':14s} {'median s':>9s} {'x spine':>8s}")
for data in ("sphere", "digits"):
    ctx, snap = setup(data)
    base = timeit(lambda ctx=ctx, snap=snap: spine_values(snap, ctx))
    print(f"{data:8s} {'spine':14s} {base:9.3f} {1.0:8.2f}")
    for name in ("distribution", "directions"):
        est = make_estimator(name)
        state = est.init(ctx)
        t = timeit(lambda est=est, state=state, ctx=ctx, snap=snap: est.update(
            ctx, state, dataclasses.replace(snap, cache=StepCache())))
        print(f"{data:8s} {name:14s} {t:9.3f} {t / base:8.2f}")
