"""Every Python example in the README and docs/ runs, so a documented example cannot rot.

Each file's plain ```python blocks run in order, in one namespace, in a temporary directory
(docs/extending.md's recipes, marked file=/append=/check, are run by tests/test_extending.py; a block
after ``<!-- not-run -->`` is illustrative: it trains real models)."""
from __future__ import annotations

import pytest

from tests.docblocks import ROOT, blocks

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _runnable(md):
    return [b for b in blocks(md) if b.lang == "python" and b.run and not b.info]


def test_the_docs_have_examples_to_run():
    assert _runnable(ROOT / "README.md"), "the README's Python API example is gone"


@pytest.mark.slow
@pytest.mark.parametrize("md", [d for d in DOCS if _runnable(d)], ids=lambda p: p.name)
def test_python_blocks_run(md, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for block in _runnable(md):
        try:
            exec(compile(block.code, f"{md.name}:{block.line}", "exec"), namespace)
        except Exception as exc:  # say which block broke
            raise AssertionError(f"{md.name}, block at line {block.line}: {type(exc).__name__}: {exc}") from exc


def test_the_method_docs_name_every_registered_block():
    """docs/method.md's tables keep up with the registries: a row per conditioner, every sampler named."""
    from ldmiss.diffusion import CONDITIONERS, STEPPERS
    text = (ROOT / "docs" / "method.md").read_text()
    for name in CONDITIONERS:
        assert f"| `{name}` |" in text, f"docs/method.md has no row for the conditioner {name!r}"
    for name in STEPPERS:
        assert f"`{name}`" in text, f"docs/method.md does not name the sampler {name!r}"
