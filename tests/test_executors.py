"""The executors: a sweep through a local Ray instance with 2 workers gives the same runs and
metrics as the local process pool."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldmiss.experiments import load_preset, store
from ldmiss.experiments.executors import LocalExecutor, RayExecutor, make_executor
from ldmiss.experiments.sweep import run_sweep


def _metrics(root):
    out = {}
    for r in store.load_runs(root):
        flat = {}

        def walk(d, prefix=""):
            for k, v in d.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                elif isinstance(v, (int, float)) and not k.endswith("seconds"):
                    flat[prefix + k] = v
        walk(r["metrics"])
        out[(r["method"], r["train_rate"])] = flat
    return out


@pytest.mark.slow
def test_ray_executor_gives_the_local_executors_results(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra ldmiss[ray] (make test installs it)")
    cfg = load_preset("smoke")
    cfg.methods, cfg.train_rates = ["mean", "vae", "ldmiss"], [0.5]
    local = run_sweep(cfg, tmp_path / "local", progress=False, executor=LocalExecutor(jobs=2, device="cpu"))
    ray_run = run_sweep(cfg, tmp_path / "ray", progress=False,
                        executor=RayExecutor(cpus_per_run=1, device="cpu", num_cpus=2))
    assert local["failed"] == ray_run["failed"] == 0 and local["ran"] == ray_run["ran"] == 3
    a, b = _metrics(tmp_path / "local"), _metrics(tmp_path / "ray")
    assert a.keys() == b.keys() and len(a) == 3
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            assert math.isclose(value, b[key][name], rel_tol=1e-6, abs_tol=1e-9), (key, name, value, b[key][name])
    docs = store.load_runs(tmp_path / "ray")
    assert all(d["torch_threads"] == 1 and d["device"] == "cpu" for d in docs)


def test_make_executor_choices():
    assert isinstance(make_executor("local", jobs=3), LocalExecutor)
    ray_ex = make_executor("ray", cpus_per_run=2, gpus_per_run=1)
    assert isinstance(ray_ex, RayExecutor) and ray_ex.device == "cuda" and ray_ex.cpus == 2
    assert make_executor("ray").device == "cpu"  # no GPU reserved: never use one unannounced
    with pytest.raises(ValueError, match="executor"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="cpus-per-run"):
        make_executor("ray", cpus_per_run=0)


def _sleep_and_tell(pid_dir, device, threads):
    """A pool worker's run: say who it is, then take far longer than the test waits."""
    (Path(pid_dir) / str(os.getpid())).touch()
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))  # a zombie is gone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_workers_die_when_the_sweep_process_is_killed(tmp_path):
    """``kill -9`` of a ``--jobs 2`` sweep used to leave both workers running their fits to the end."""
    root = Path(__file__).resolve().parents[1]
    script = ("import sys; from ldmiss.experiments.executors import LocalExecutor; "
              "from tests.test_executors import _sleep_and_tell; "
              f"list(LocalExecutor(jobs=2, device='cpu').run(_sleep_and_tell, [({str(tmp_path)!r},), ({str(tmp_path)!r},)]))")
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=root, env=env)
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.2)
        workers = [int(p.name) for p in tmp_path.iterdir()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 15
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers)
    finally:
        parent.kill()
        for p in tmp_path.iterdir():
            try:
                os.kill(int(p.name), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
