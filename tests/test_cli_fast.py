"""The command line answers help and its users' mistakes before torch is imported (issue: every
command took ≈ 6 s to start, 2.7 s of it importing torch): the parser's names come from the
registries through a cached catalogue, and every check that needs no model runs first."""
import json
import subprocess
import sys

import pytest

from ldmiss import catalogue
from ldmiss.cli import check_output_dir, check_output_file
from ldmiss.errors import UsageError

PROBE = """
import sys
from ldmiss.cli import main
try:
    rc = main({argv!r})
except SystemExit as exc:
    rc = exc.code
print("RC", rc, "TORCH", "torch" in sys.modules)
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _run(argv, tmp_path, cache):
    env = {"LDMISS_CACHE": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # a first run fills the catalogue (it may import torch); the second must not
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RC")][-1].split()
    return line[1], line[3] == "True", out.stderr


@pytest.mark.parametrize("argv, rc, says", [
    (["train", "--help"], "0", ""),
    (["impute", "--help"], "0", ""),
    (["sweep", "--jobs", "0"], "2", "must be ≥ 1"),
    (["train", "--method", "nosuch", "--out", "m"], "2", "invalid choice"),
    (["impute", "nomodel", "--input", "x.npy", "--out", "y.npz"], "2", "does not exist"),
    (["sample", "nomodel", "--out", "s.npy"], "2", "does not exist"),
    (["train", "--input", "nofile.npy", "--out", "m"], "2", "does not exist"),
    (["train", "--set", "novalue", "--out", "m"], "2", "KEY=VALUE"),
    (["train", "--out", "afile/m"], "2", "afile/m"),
])
def test_answers_without_torch(tmp_path, cache, argv, rc, says):
    (tmp_path / "afile").write_text("not a folder")
    code, torch_loaded, err = _run(argv, tmp_path, cache)
    assert code == rc, err
    assert not torch_loaded, f"{argv} imported torch"
    assert says in err


def test_catalogue_is_the_registries_and_follows_the_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("LDMISS_CACHE", str(tmp_path))
    live = catalogue.read_registries()
    assert catalogue.catalogue() == live  # a miss reads the registries
    files = list((tmp_path / "cli").glob("catalogue-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == live
    assert "ldmiss" in live["methods"] and "guidance" in live["conditioners"] and "cpu" in live["presets"]
    # a cached file is what a hit returns; a change of the sources' key makes a fresh read
    files[0].write_text(json.dumps({**live, "methods": ["only-this"]}))
    assert catalogue.catalogue()["methods"] == ["only-this"]
    monkeypatch.setattr(catalogue, "source_key", lambda: "another-key")
    assert catalogue.catalogue() == live
    assert len(list((tmp_path / "cli").glob("catalogue-*.json"))) == 1  # the stale file is gone


def test_output_checks_write_for_real(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        check_output_dir(tmp_path / "afile")
    with pytest.raises(UsageError, match="cannot create"):
        check_output_dir(tmp_path / "afile" / "sub")
    with pytest.raises(UsageError, match="does not exist"):
        check_output_file(tmp_path / "nodir" / "x.npy")
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path)
    check_output_dir(tmp_path / "new" / "deeper")  # creatable: nothing is created by the check
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".ldmiss-probe-*"))
