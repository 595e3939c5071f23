"""Resource bounds: memory stays flat over long training; threads do not interfere."""
import threading
import tracemalloc

import numpy as np

import autonet
import autonet.nn as nn
from autonet import notebook
from autonet.models import TwoLayerNNClassifier
from autonet.optim import Adam


def test_ten_thousand_steps_keep_memory_flat():
    model = nn.Sequential(nn.Linear(3, 8, rng=0), nn.Tanh(), nn.Linear(8, 1, rng=1))
    optimizer = Adam(model.parameters(), lr=0.01)
    X, Y = autonet.Tensor(notebook.X), autonet.Tensor(notebook.Y_XOR)

    def step():
        loss = nn.MSELoss()(model(X).sigmoid(), Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    tracemalloc.start()
    try:
        # Warm up under tracing: CPython's free lists and allocator pools fill
        # once (about 200 KB here), then stay level.
        for _ in range(3000):
            step()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            step()
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert growth < 16 * 1024, f"memory grew by {growth} bytes over 10,000 steps"


def _train(seed, results, grad_mode_flips):
    model = TwoLayerNNClassifier(rng=seed)
    for _ in range(grad_mode_flips):
        with autonet.no_grad():            # per-thread: must not disturb the other thread
            model.predict(notebook.X)
        model.fit(notebook.X, notebook.Y_XOR, epochs=50)
    results[seed] = (model.W0.data.copy(), model.W1.data.copy(), list(model.loss_history_))


def test_two_threads_train_like_sequential_runs():
    sequential, threaded = {}, {}
    for seed in (0, 1):
        _train(seed, sequential, 20)
    threads = [threading.Thread(target=_train, args=(seed, threaded, 20)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (0, 1):
        for a, b in zip(sequential[seed][:2], threaded[seed][:2]):
            np.testing.assert_array_equal(a, b)
        assert sequential[seed][2] == threaded[seed][2]
