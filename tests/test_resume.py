"""Resumable training: a fit killed after a checkpoint and called again equals an uninterrupted fit,
bit for bit on the CPU — for one training loop killed with SIGKILL in another process, and for every
method's multi-stage fit (β-VAE + prior; DiffPuter's M-steps with an E-step between them)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import ldmiss.training as training
from ldmiss.methods import get_method_class

from .conftest import TINY

SCRIPT = textwrap.dedent("""
    import sys, torch
    from ldmiss.training import TrainConfig
    from ldmiss.nets import ResMLP
    from ldmiss.training import train
    from ldmiss.methods.common import diffusion_loss
    from ldmiss.diffusion import LossConfig
    from ldmiss.diffusion import VPSDE
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = ResMLP((2, 3, 1), 32, 1)
    data = (torch.randn(256, 2, 3, 1, generator=torch.Generator().manual_seed(1)),)
    loss = diffusion_loss(net, VPSDE(), LossConfig(prediction="v", time_dist="logsnr"))
    cfg = TrainConfig(steps=int(sys.argv[2]), batch_size=32, lr=1e-3, lr_schedule="cosine", warmup_steps=10)
    model, info = train(net, loss, data, cfg, torch.Generator().manual_seed(2), progress=False,
                        checkpoint=sys.argv[1] if sys.argv[1] != "-" else None, checkpoint_every=float(sys.argv[4]))
    torch.save({"weights": model.state_dict(), "info": info}, sys.argv[3])
""")


def _run(tmp_path, ckpt: str, steps: int, out: str, wait: bool = True, every: float = 0.0):
    """Train in a child process; ``every``: seconds between checkpoints (0 = every step)."""
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, str(script), ckpt, str(steps), out, str(every)], env=env)
    if wait:
        assert p.wait(timeout=300) == 0
    return p


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(tmp_path):
    """Killed (SIGKILL) while saving every step, then resumed: the weights equal an uninterrupted
    run's. The resumed run saves only at its end (saving does not change the state), and 1,000
    steps leave ample room to kill after step 200 (0.1 used 3,000 steps and saved every step of
    the resumed run too; the assertions are the same)."""
    steps = 1000
    _run(tmp_path, "-", steps, str(tmp_path / "straight.pt"))
    ckpt = tmp_path / "loop.ckpt"
    p = _run(tmp_path, str(ckpt), steps, str(tmp_path / "never.pt"), wait=False)
    deadline = time.time() + 240
    while time.time() < deadline:  # let it get some way in, then kill it without warning
        if ckpt.is_file():
            try:
                step = torch.load(ckpt, weights_only=False)["step"]
            except Exception:  # caught between the write and the rename of a save: look again
                step = 0
            if step >= 200:
                break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < killed_at < steps and not (tmp_path / "never.pt").exists()
    _run(tmp_path, str(ckpt), steps, str(tmp_path / "resumed.pt"), every=1e9)
    a, b = torch.load(tmp_path / "straight.pt"), torch.load(tmp_path / "resumed.pt")
    assert b["info"]["resumed_at"] == killed_at
    assert a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])


class Killed(Exception):
    pass


# (method, the checkpoint after which it dies): every step saves, so ldmiss (30 β-VAE + 30 prior
# steps) dies in its prior and DiffPuter (2 M-steps of 5) in its second M-step, after the E-step;
# ldmiss-em (30 + 30, then an E-step and 10 M-steps) dies at the prior's last save, before its
# E-step (the resumed fit replays it), and in its EM M-step.
KILLS = [("ldmiss", 40), ("diffputer", 7), ("ddpm", 5), ("vae", 12), ("ldmiss-em", 60), ("ldmiss-em", 65)]


@pytest.mark.parametrize("name,kill_at", KILLS)
def test_a_fit_killed_after_a_checkpoint_resumes_exactly(name, kill_at, small_batch, tmp_path, monkeypatch):
    x, m = small_batch
    cls = get_method_class(name)
    straight = cls(None, device="cpu", **TINY[name]).fit(x, m, seed=3, progress=False)
    real_save, calls = training._save_checkpoint, {"n": 0}

    def save_then_die(path, state):
        real_save(path, state)
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed

    monkeypatch.setattr(training, "_save_checkpoint", save_then_die)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Killed):
        cls(None, device="cpu", **TINY[name]).fit(x, m, seed=3, progress=False, checkpoint_dir=ckpt, checkpoint_every=0)
    monkeypatch.setattr(training, "_save_checkpoint", real_save)
    resumed = cls(None, device="cpu", **TINY[name]).fit(x, m, seed=3, progress=False, checkpoint_dir=ckpt,
                                                        checkpoint_every=0)
    a, b = straight.state_tensors(), resumed.state_tensors()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    if cls.generative:  # and sampling from the resumed model gives the same images
        assert torch.equal(torch.as_tensor(straight.sample(4, seed=1, progress=False)),
                           torch.as_tensor(resumed.sample(4, seed=1, progress=False)))
