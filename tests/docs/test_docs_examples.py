"""Every ``python`` code block in the documentation runs (the docs show working code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from ckconv.data.speech_synth import MissingProgramError

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for i, match in enumerate(_BLOCK.finditer(page.read_text())):
            found.append((f"{page.relative_to(DOCS).as_posix()}#{i + 1}", match.group(1)))
    return found


def test_the_docs_have_examples():
    assert len(_blocks()) >= 10


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[w for w, _ in _blocks()])
def test_docs_example_runs(where, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    except MissingProgramError as err:  # espeak-ng / sox: the suite must not need them
        pytest.skip(str(err))
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    # examples that print a comparison with the offline forward must print True
    assert "False" not in out, out
