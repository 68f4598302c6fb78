"""The documentation site builds with ``mkdocs build --strict`` and covers the package."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_docs_build_strict(tmp_path):
    for module, package in (
        ("mkdocs", "mkdocs"),
        ("mkdocstrings", "mkdocstrings"),
        ("mkdocstrings_handlers.python", "mkdocstrings-python"),
    ):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            pytest.skip(f"{package} is not installed (pip install -e '.[docs]' builds the docs)")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "WARNING" not in log, log
    index = (tmp_path / "site" / "api" / "nn" / "index.html").read_text()
    assert 'id="ckconv.nn.CKConv"' in index  # the API reference was generated from docstrings
    assert (tmp_path / "site" / "img" / "fit_kernels.png").is_file()


def _public_packages() -> list[str]:
    src = ROOT / "src" / "ckconv"
    return sorted(
        p.name
        for p in src.iterdir()
        if (p / "__init__.py").is_file() or (p.suffix == ".py" and not p.name.startswith("_"))
    )


def test_every_package_has_an_api_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in _public_packages():
        name = name.removesuffix(".py")
        page = DOCS / "api" / f"{name}.md"
        assert page.is_file(), f"no API page for ckconv.{name}: add docs/api/{name}.md"
        assert f"::: ckconv.{name}" in page.read_text()
        assert f"api/{name}.md" in nav, f"docs/api/{name}.md is not in mkdocs.yml's nav"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        rel = page.relative_to(DOCS).as_posix()
        assert re.search(rf":\s*{re.escape(rel)}\s*$", nav, re.M), f"{rel} is not in the nav"


def test_every_shipped_config_is_on_the_reproduction_page():
    configs = sorted((ROOT / "src" / "ckconv" / "app" / "configs").glob("*.yaml"))
    assert configs
    page = (DOCS / "reproduction.md").read_text()
    missing = [c.stem for c in configs if f"`{c.stem}`" not in page]
    assert not missing, f"configs not listed in docs/reproduction.md: {missing}"
