"""The package's layers hold (SPEC 2): read every module's imports.

* Nothing outside ``ckconv.app`` imports ``ckconv.app``, at module level or inside a function.
* The core (``grids``, ``functional``, ``kernelnets``, ``nn``, ``models``, ``deploy``) imports no
  ``ckconv.data`` / ``viz`` / ``studies``; at module level it imports only the standard library,
  torch, numpy and the core itself; inside functions, only the optional packages listed in
  ``_OPTIONAL`` (each with the reason it is optional).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ckconv

PACKAGE = Path(ckconv.__file__).parent
CORE = ("ckconv.grids", "ckconv.functional", "ckconv.kernelnets", "ckconv.nn", "ckconv.models",
        "ckconv.deploy")  # fmt: skip
# the layers above the core (and beside each other): the core never imports them
ABOVE_CORE = ("ckconv.app", "ckconv.data", "ckconv.viz", "ckconv.studies")
# optional packages the core imports inside the function that needs them
_OPTIONAL = {
    "scipy": "faster neighbour search (ckconv.functional.neighbors, backend='scipy')",
    "onnx": "ONNX export (ckconv.deploy.export_onnx)",
    "onnxscript": "ONNX export (ckconv.deploy.export_onnx)",
    "onnxruntime": "running exported ONNX files",
}
_MODULE_LEVEL_OK = {"torch", "numpy", "ckconv", *sys.stdlib_module_names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import in ``source``, relative
    imports resolved against ``module``; ``importlib.import_module("...")`` calls count too."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((target, node.lineno, in_function))
            # `from ckconv import app` imports the submodule
            found.extend(
                (f"{target}.{alias.name}", node.lineno, in_function) for alias in node.names
            )
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno, in_function))
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def _modules() -> list[tuple[str, Path]]:
    return [(_module_name(p), p) for p in sorted(PACKAGE.rglob("*.py"))]


def test_the_import_reader_sees_every_kind_of_import():
    source = (
        "import os\nfrom . import app\nfrom ..data.registry import TASKS\n"
        "def f():\n    import importlib\n    from ckconv.app.run import load_model\n"
        "    importlib.import_module('ckconv.app.cli')\n"
    )
    got = imports(source, "ckconv.viz.command")
    assert ("ckconv.viz.app", 2, False) in got
    assert ("ckconv.data.registry", 3, False) in got
    assert ("ckconv.app.run", 6, True) in got and ("ckconv.app.cli", 7, True) in got
    assert ("ckconv.app", 1, False) in imports("from .. import app", "ckconv.viz", True)


def test_nothing_outside_the_app_imports_it():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        for module, path in _modules()
        if not _within(module, "ckconv.app")
        for target, line, _ in imports(path.read_text(), module, path.name == "__init__.py")
        if _within(target, "ckconv.app")
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("layer", CORE)
def test_the_core_imports_only_torch_numpy_and_itself(layer):
    offenders = []
    for module, path in _modules():
        if not _within(module, layer):
            continue
        for target, line, lazy in imports(path.read_text(), module, path.name == "__init__.py"):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
            top = target.split(".")[0]
            if any(_within(target, above) for above in ABOVE_CORE):
                offenders.append(where)
            elif top in _MODULE_LEVEL_OK:
                continue
            elif not lazy or top not in _OPTIONAL:
                offenders.append(where + (" at module level" if not lazy else ""))
    assert not offenders, "\n".join(offenders)


def test_importing_the_library_loads_no_app_data_or_extras():
    code = (
        "import sys, ckconv, ckconv.models, ckconv.nn, ckconv.functional, ckconv.kernelnets, "
        "ckconv.grids, ckconv.deploy\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'matplotlib', 'scipy', 'onnx', 'yaml') "
        "or m.startswith(('ckconv.app', 'ckconv.data', 'ckconv.viz', 'ckconv.studies')))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
