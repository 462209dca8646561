"""docs/extending.md, executed: each recipe adds a conditioner, a sampler, a method, a mechanism or
a dataset to a copy of the package as one new file plus one registry line, and its check passes
there (registries, config tables, CLI, contract tests). This is the before/after the v0.2 seams
promise: nothing else needs to change."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.docblocks import ROOT, blocks

GUIDE = ROOT / "docs" / "extending.md"


def recipes() -> list[tuple[str, list]]:
    """(section title, its blocks) for every section with a file= block."""
    text_blocks = [b for b in blocks(GUIDE) if b.lang == "python"]
    lines = GUIDE.read_text().split("\n")
    out: dict[str, list] = {}
    for b in text_blocks:
        title = next(lines[i][3:] for i in range(b.line - 1, -1, -1) if lines[i].startswith("## "))
        out.setdefault(title, []).append(b)
    return [(t, bs) for t, bs in out.items() if any("file" in b.info for b in bs)]


def test_the_guide_covers_every_kind_of_block():
    assert [t for t, _ in recipes()] == ["A conditioner", "A sampler", "A method", "A mechanism", "A dataset"]


@pytest.mark.slow
@pytest.mark.parametrize("title,recipe", recipes(), ids=[t for t, _ in recipes()])
def test_a_recipe_is_one_file_and_one_registry_line(title, recipe, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(ROOT / "ldmiss", work / "ldmiss", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    touched = []
    for b in recipe:
        if "file" in b.info:
            target = work / b.info["file"]
            assert not target.exists(), f"{title}: {b.info['file']} already exists"
            target.write_text(b.code)
            touched.append(b.info["file"])
        elif "append" in b.info:
            assert len(b.code.strip().splitlines()) == 1, f"{title}: a registry line is one line"
            target = work / b.info["append"]
            target.write_text(target.read_text() + b.code)
            touched.append(b.info["append"])
    assert len(touched) == 2 and len(set(touched)) == 2, touched  # one new file, one registry line
    checks = [b.code for b in recipe if "check" in b.info]
    assert len(checks) == 1, f"{title}: one check block"
    (work / "check.py").write_text(checks[0])
    env = {**os.environ, "PYTHONPATH": str(work), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "check.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{title}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
