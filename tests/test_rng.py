"""One source of randomness (ldmiss/rng.py): every draw goes through it, a seed gives the same noise
on any device, and fitting, sampling and imputing leave the caller's global RNG alone."""
from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ldmiss import rng
from ldmiss.methods import LDMiss, PixelDDPM
from ldmiss.missing import mcar_mask

PACKAGE = Path(__file__).resolve().parents[1] / "ldmiss"
RANDOM_CALLS = {"rand", "randn", "randint", "randperm", "multinomial", "bernoulli", "normal", "poisson", "rand_like",
                "randn_like", "randint_like", "manual_seed", "seed"}


def _is_torch_attr(node: ast.AST, names: set[str]) -> bool:
    """``torch.<name>`` or ``torch.random.<name>``."""
    if not isinstance(node, ast.Attribute) or node.attr not in names:
        return False
    base = node.value
    return (isinstance(base, ast.Name) and base.id == "torch") or (
        isinstance(base, ast.Attribute) and base.attr == "random" and isinstance(base.value, ast.Name)
        and base.value.id == "torch")


def offending_random_calls(root: Path = PACKAGE) -> list[str]:
    """Random calls outside ldmiss/rng.py that take a generator, seed torch's global RNG or make a
    generator of their own: each would be a second source of randomness."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "rng.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(root.parent)}:{node.lineno}"
            if _is_torch_attr(node.func, {"Generator"}):
                found.append(f"{where}: torch.Generator(...)")
            elif _is_torch_attr(node.func, RANDOM_CALLS) and (
                    any(k.arg == "generator" for k in node.keywords) or node.func.attr in ("manual_seed", "seed")):
                found.append(f"{where}: torch.{node.func.attr}(...)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("normal_", "uniform_", "bernoulli_",
                                                                             "random_", "exponential_") \
                    and any(k.arg == "generator" for k in node.keywords):
                found.append(f"{where}: .{node.func.attr}(generator=...)")
    return found


def test_every_seeded_draw_in_the_package_goes_through_rng():
    assert offending_random_calls() == []


def test_the_static_check_finds_a_draw_outside_rng(tmp_path):
    pkg = tmp_path / "ldmiss"
    pkg.mkdir()
    (pkg / "rng.py").write_text("import torch\ng = torch.Generator()\n")  # allowed there
    (pkg / "bad.py").write_text("import torch\n"
                                "def f(g):\n"
                                "    torch.manual_seed(0)\n"
                                "    x = torch.randn(3, generator=g)\n"
                                "    return torch.Generator(device='cuda'), x.normal_(generator=g)\n")
    assert [line.split(": ")[1] for line in offending_random_calls(pkg)] == [
        "torch.manual_seed(...)", "torch.randn(...)", "torch.Generator(...)", ".normal_(generator=...)"]


def test_draws_are_the_cpu_stream_moved_to_the_device():
    """The same seed gives the same values wherever they land (``meta`` stands in for a GPU here)."""
    a = rng.randn((4, 3), rng.generator(7))
    assert torch.equal(a, torch.randn((4, 3), generator=torch.Generator().manual_seed(7)))
    assert rng.randn((4, 3), rng.generator(7), device="meta").device.type == "meta"
    assert torch.equal(rng.randperm(9, rng.generator(1)), torch.randperm(9, generator=torch.Generator().manual_seed(1)))
    x = torch.zeros(5, 2)
    assert torch.equal(rng.randn_like(x, rng.generator(3)), rng.randn((5, 2), rng.generator(3)))
    ints = rng.randint(2, 5, (1000,), rng.generator(0))
    assert ints.min() == 2 and ints.max() == 4
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert rng.multinomial(probs, 1, rng.generator(0)).squeeze(1).tolist() == [1, 2]


def test_a_generator_on_another_device_is_refused():
    """A CUDA generator cannot be made without a GPU: an object that says it lives there stands in."""
    cuda_generator = SimpleNamespace(device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match="live on the CPU"):
        rng.randn(3, cuda_generator)


def test_child_streams_differ_from_each_other_and_leave_the_parent_alone():
    parent = rng.generator(11)
    before = parent.get_state()
    a, b = rng.child(parent, 1), rng.child(parent, 2)
    assert torch.equal(parent.get_state(), before)
    assert not torch.equal(rng.randn(5, a), rng.randn(5, b))
    assert torch.equal(rng.randn(5, rng.child(parent, 1)), rng.randn(5, rng.child(rng.generator(11), 1)))


def test_isolated_seeds_the_block_and_restores_the_callers_state():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with rng.isolated(5):
        inside = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    with rng.isolated(5):
        assert torch.equal(torch.rand(3), inside)


@pytest.mark.parametrize("cls, overrides", [
    (LDMiss, dict(vae={"width": 8, "train": {"steps": 3, "batch_size": 16}},
                  prior={"net": {"width": 16, "depth": 1}, "train": {"steps": 3, "batch_size": 16},
                         "sampler": {"steps": 2}})),
    (PixelDDPM, dict(net={"base": 8, "mults": [1]}, train={"steps": 2, "batch_size": 8}, sampler={"steps": 2})),
])
def test_fit_sample_and_impute_leave_the_global_rng_untouched(cls, overrides):
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    m = mcar_mask(x.shape, 0.5, seed=0)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    model = cls(None, device="cpu", **overrides).fit(x * m, m, seed=3, progress=False)
    model.sample(2, seed=1, progress=False)
    model.impute((x * m)[:2].numpy(), m[:2].numpy(), draws=2, seed=1, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    # and the fit does not depend on the caller's global state either
    torch.manual_seed(1234)
    again = cls(None, device="cpu", **overrides).fit(x * m, m, seed=3, progress=False)
    for k, v in model.state_tensors().items():
        assert torch.equal(v, again.state_tensors()[k]), k
    assert np.array_equal(model.sample(2, seed=1, progress=False), again.sample(2, seed=1, progress=False))
