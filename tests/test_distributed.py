"""Data-parallel training on the CPU: 2 gloo processes run the one training loop, see different
slices of every global batch, and end with identical weights — equal to one process on the same
global batches when the loss has no noise. And the CLI's train command under torchrun."""
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ldmiss.training import TrainConfig, train

N, STEPS, BATCH = 64, 12, 16


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 3, generator=g)
    y = x.sum(1, keepdim=True).sin()
    idx = torch.arange(N)
    return model, (x, y, idx)


def _train(seen: list, with_noise: bool):
    model, data = _setup()

    def loss_fn(xb, yb, ib, gen):
        seen.append(ib.tolist())
        noise = torch.randn(yb.shape, generator=gen) * 0.1 if with_noise else 0.0
        return ((model(xb) - yb - noise) ** 2).mean()

    cfg = TrainConfig(steps=STEPS, batch_size=BATCH, lr=1e-2, ema_decay=0.9)
    final, _ = train(model, loss_fn, data, cfg, torch.Generator().manual_seed(2), progress=False)
    return final


def _rank(rank, world, init_file, out_dir, with_noise):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    seen = []
    final = _train(seen, with_noise)
    torch.save({"seen": seen, "weights": final.state_dict()}, os.path.join(out_dir, f"rank{rank}.pt"))
    from ldmiss.distributed import finish
    finish()  # barrier, then leave: gloo aborts a rank whose peer tears down first
    # Leave without the interpreter's and C++'s exit-time destructors: now and then one of gloo's
    # still-joinable threads is destroyed there and aborts a rank whose work is done and saved
    # ("terminate called without an active exception", SIGABRT). The results are on disk already.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.slow
@pytest.mark.parametrize("with_noise", [False, True])
def test_two_gloo_ranks_split_batches_and_agree(tmp_path, with_noise):
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path), with_noise), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1))
    assert len(r0["seen"]) == len(r1["seen"]) == STEPS
    single_seen = []
    single = _train(single_seen, with_noise)
    for a, b, whole in zip(r0["seen"], r1["seen"], single_seen):
        assert len(a) == len(b) == BATCH // 2 and not set(a) & set(b)  # different halves …
        if not with_noise:  # … of the global batch one process would have used (its noise draws
            assert a + b == whole  # share the stream with the batch order; the ranks' do not)
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k])  # all ranks hold the same model
    if not with_noise:  # mean of the halves' gradients = the whole batch's gradient
        for k, v in single.state_dict().items():
            assert torch.allclose(r0["weights"][k], v, atol=1e-5), k


@pytest.mark.slow
def test_cli_train_under_torchrun(tmp_path):
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "ldmiss.cli", "train", "--method", "ldmiss", "--preset", "smoke", "--rate", "0.5",
           "--train-size", "256", "--out", str(out), "--device", "cpu", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "on 2 data-parallel processes" in res.stdout and res.stdout.count("trained ldmiss") == 1
    assert (out / "config.json").is_file()
