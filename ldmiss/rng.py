"""Every random draw in LDMiss goes through this module.

Why one module: a seeded run must give the same numbers wherever it runs. Generators here always
live on the CPU, and every draw is made on the CPU and then moved to the device that uses it. A
CUDA run therefore draws exactly the noise a CPU run with the same seed draws (the GPU path is
correct by construction and testable on a machine without one), and no call can ask a CUDA
generator for a CPU draw or the other way round. The cost is one host → device copy per draw,
which is small next to a network evaluation.

``generator=None`` draws from torch's global RNG (on the CPU, then moved), for callers that have
no stream of their own. :func:`isolated` runs code that must use the global RNG (network
initialisation, layers with built-in randomness) under a fixed seed and restores the caller's
state afterwards, so ``fit``/``sample``/``impute`` leave the caller's global RNG untouched.

A static test (tests/test_rng.py) fails when a torch random call outside this module takes a
generator, or a ``torch.Generator`` is made elsewhere.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch

Shape = Sequence[int] | torch.Size | int


def generator(seed: int) -> torch.Generator:
    """A seeded CPU generator: the one kind of generator LDMiss uses."""
    return torch.Generator().manual_seed(int(seed))


def _shape(shape: Shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def _check(gen: torch.Generator | None) -> None:
    if gen is not None and gen.device.type != "cpu":
        raise ValueError(f"LDMiss generators live on the CPU (ldmiss.rng.generator); got one on {gen.device}")


def randn(shape: Shape, gen: torch.Generator | None, device=None, dtype=None) -> torch.Tensor:
    """Standard normal draws of ``shape`` on ``device``."""
    _check(gen)
    return torch.randn(_shape(shape), generator=gen, dtype=dtype).to(device)


def randn_like(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws (float32) shaped like ``x``, on its device."""
    _check(gen)
    return torch.randn(x.shape, generator=gen).to(x.device)


def rand(shape: Shape, gen: torch.Generator | None, device=None) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``device``."""
    _check(gen)
    return torch.rand(_shape(shape), generator=gen).to(device)


def randint(low: int, high: int, shape: Shape, gen: torch.Generator | None, device=None) -> torch.Tensor:
    """Integers in [low, high) of ``shape`` on ``device``."""
    _check(gen)
    return torch.randint(int(low), int(high), _shape(shape), generator=gen).to(device)


def randperm(n: int, gen: torch.Generator | None, device=None) -> torch.Tensor:
    """A random permutation of range(n) on ``device``."""
    _check(gen)
    return torch.randperm(int(n), generator=gen).to(device)


def multinomial(probs: torch.Tensor, num_samples: int, gen: torch.Generator | None) -> torch.Tensor:
    """``torch.multinomial`` of each row of ``probs`` (computed on the CPU), indices on probs' device."""
    _check(gen)
    return torch.multinomial(probs.detach().cpu(), int(num_samples), generator=gen).to(probs.device)


def seed_from(gen: torch.Generator) -> int:
    """A fresh 31-bit seed drawn from ``gen`` (advances it by one draw)."""
    return int(randint(0, 2**31 - 1, (1,), gen))


def child(gen: torch.Generator, salt: int) -> torch.Generator:
    """An independent generator derived from ``gen``'s seed and ``salt`` without drawing from
    ``gen`` (so a stream shared by several processes stays in step, e.g. per-rank noise)."""
    _check(gen)
    return generator((gen.initial_seed() * 1_000_003 + 7919 * int(salt)) % 2**63)


@contextlib.contextmanager
def isolated(seed: int | None, device=None) -> Iterator[None]:
    """Run the block on torch's global RNG seeded with ``seed`` (None: left as it is), and restore the
    caller's global RNG state (CPU, and ``device``'s when it is a GPU) when the block ends."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if seed is not None:
            torch.manual_seed(int(seed))
        yield


__all__ = ["generator", "randn", "randn_like", "rand", "randint", "randperm", "multinomial", "seed_from", "child",
           "isolated"]
