"""Fenced code blocks of the Markdown docs, for the tests that run them (tests/test_docs.py,
tests/test_extending.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)
NOT_RUN = "<!-- not-run -->"


@dataclass
class Block:
    path: Path  # the Markdown file
    line: int
    lang: str
    info: dict  # key=value words after the language (file=…, append=…) and bare words (check)
    code: str
    run: bool  # False when the line before the fence says <!-- not-run -->


def blocks(md: Path) -> list[Block]:
    text = md.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        info = {}
        for word in m.group(2).split():
            key, _, value = word.partition("=")
            info[key] = value or True
        out.append(Block(md, text[:m.start()].count("\n") + 1, m.group(1), info, m.group(3), before != NOT_RUN))
    return out
