"""docs/impute-my-images.md works as written: every `ldmiss` command in its bash blocks is run, in
order, on a folder of images generated here (with the `smoke` preset in place of `quick`: the same
code path in seconds)."""
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldmiss.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "impute-my-images.md"


def guide_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip().startswith("ldmiss ")]
    return [shlex.split(ln)[1:] for ln in lines]


def _scans(folder: Path, n: int, seed: int, holes: bool):
    """Grey 16×16 'scans' (strokes on paper), saved as LA PNGs; ``holes``: a transparent 4×6 patch."""
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:16, :16]
    for i in range(n):
        a, b = g.uniform(-1, 1, 2)
        ink = np.exp(-((a * (xx - 8) + b * (yy - 8)) ** 2) / 6.0)
        grey = np.rint(255 * (1 - 0.8 * ink)).astype(np.uint8)
        alpha = np.full((16, 16), 255, np.uint8)
        if holes:
            top, left = g.integers(0, 12), g.integers(0, 10)
            alpha[top:top + 4, left:left + 6] = 0
        Image.fromarray(np.stack([grey, alpha], -1), "LA").save(folder / f"scan{i:02d}.png")


@pytest.mark.slow
def test_the_guide_runs_as_written(tmp_path, monkeypatch):
    commands = guide_commands()
    assert [c[0] for c in commands] == ["train", "sweep", "report", "impute"]
    monkeypatch.chdir(tmp_path)
    _scans(tmp_path / "scans", 40, seed=0, holes=True)
    _scans(tmp_path / "damaged", 6, seed=1, holes=True)
    for argv in commands:
        argv = [("smoke" if a == "quick" else a) for a in argv] + (["--quiet"] if argv[0] != "report" else [])
        assert main(argv) == 0, argv
    report = (tmp_path / "runs" / "scans" / "report.md").read_text()
    for method in ("ldmiss", "biharmonic", "neighbours", "decoder floor"):
        assert method in report
    filled = sorted(p.name for p in (tmp_path / "filled").iterdir())
    assert "scan00.png" in filled and "scan00.std.png" in filled and "imputed.npz" in filled
    assert (tmp_path / "filled.png").is_file()
    out = np.asarray(Image.open(tmp_path / "filled" / "scan00.png"))
    src = np.asarray(Image.open(tmp_path / "damaged" / "scan00.png"))
    seen = src[..., 1] > 0
    assert out.shape == (16, 16) and (out[seen] == src[..., 0][seen]).all()  # observed pixels kept exactly
