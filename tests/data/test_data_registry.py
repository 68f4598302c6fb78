import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ckconv.data
from ckconv.app.data_command import format_task_table, main_data_list
from ckconv.data.registry import TASKS, list_tasks, make_datasets
from ckconv.data.uea import aeon_data_dir

# SPEC section 6: every experiment of both papers has a task here.
SPEC_TASKS = {
    "copy_memory",
    "adding_problem",
    "kernel_fitting",
    "smnist",
    "pmnist",
    "scifar10",
    "character_trajectories",
    "speech_mfcc",
    "speech_raw",
    "speech_raw_0.5x",
    "physionet_sepsis",
    "char_ptb",
    "lra_listops",
    "lra_text",
    "lra_image",
    "lra_pathfinder",
    "lra_image2d",
    "lra_pathfinder2d",
    "cifar10",
    "cifar100",
    "stl10",
    "modelnet40",
    "modelnet10_voxel",
}


def test_every_spec_task_is_registered():
    assert SPEC_TASKS <= set(TASKS)
    for t in TASKS.values():
        # tasks on your own files (task.path) read their shape from the data
        assert (t.shape or t.own_data) and t.data_format
        assert callable(t.factory) and callable(t.finder)


def test_list_tasks_on_empty_root(tmp_path, capsys):
    rows = {r.name: r for r in list_tasks(tmp_path)}
    assert set(rows) == set(TASKS)
    assert rows["copy_memory"].found and rows["adding_problem"].found
    assert rows["digits"].found  # scikit-learn ships the data
    for name in (
        "smnist",
        "cifar10",
        "speech_raw",
        "modelnet40",
        "lra_listops",
        "physionet_sepsis",
    ):
        assert not rows[name].found and rows[name].path == ""
    table = format_task_table(list(rows.values()))
    lines = table.splitlines()
    assert lines[0].split() == ["task", "shape", "classes", "found", "path"]
    assert any(ln.startswith("speech_mfcc") and "20x161" in ln and " no" in ln for ln in lines)
    assert any(ln.startswith("adding_problem") and "regression" in ln for ln in lines)
    assert main_data_list(["--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smnist" in out and f"root {tmp_path}: 0 tasks have their files there" in out


def test_list_tasks_says_where_each_task_was_found(tmp_path):
    """A copy inside an installed package is not reported as found under the root."""
    import shutil

    rows = {r.name: r for r in list_tasks(tmp_path)}
    assert rows["copy_memory"].source == "generated"
    assert rows["digits"].source == "installed"
    assert rows["uea"].source == "task.path" and not rows["uea"].found
    assert rows["smnist"].source == "" and not rows["smnist"].found
    if aeon_data_dir() is None:
        pytest.skip("the aeon wheel is not installed")
    jv = rows["japanese_vowels"]
    assert jv.found and jv.source == "installed" and Path(jv.path).parent == aeon_data_dir()
    table = format_task_table(list(rows.values()))
    assert any(ln.startswith("japanese_vowels") and "yes (installed copy)" in ln
               for ln in table.splitlines())  # fmt: skip
    # the same files under the root are found there
    shutil.copytree(aeon_data_dir() / "JapaneseVowels", tmp_path / "JapaneseVowels")
    jv = {r.name: r for r in list_tasks(tmp_path)}["japanese_vowels"]
    assert jv.source == "root" and Path(jv.path) == tmp_path / "JapaneseVowels"


def test_list_tasks_finds_fabricated_files(tmp_path, fab, rng):
    d = tmp_path / "mnist"
    d.mkdir()
    for name, shape in (
        ("train-images-idx3-ubyte.gz", (20, 28, 28)),
        ("train-labels-idx1-ubyte.gz", (20,)),
        ("t10k-images-idx3-ubyte.gz", (5, 28, 28)),
        ("t10k-labels-idx1-ubyte.gz", (5,)),
    ):
        fab.idx(d / name, rng.integers(0, 10, shape, dtype=np.uint8))
    rows = {r.name: r for r in list_tasks(tmp_path)}
    assert rows["smnist"].found and rows["pmnist"].found and rows["smnist"].path == str(d)
    sets = make_datasets("pmnist", tmp_path, val_size=4)
    assert [len(sets[s]) for s in ("train", "val", "test")] == [16, 4, 5]
    assert sets["test"][0][0].shape == TASKS["pmnist"].shape
    half = make_datasets("smnist", tmp_path, val_size=4, test_subsample=2)
    assert half["test"][0][0].shape == (1, 392) and half["train"][0][0].shape == (1, 784)


def test_token_task_shapes(tmp_path):
    d = tmp_path / "listops-1000"
    d.mkdir()
    for split in ("train", "val", "test"):
        (d / f"basic_{split}.tsv").write_text("Source\tTarget\n( [MAX 1 2 ] )\t2\n[MIN 3 4 ]\t3\n")
    x, y = make_datasets("lra_listops", tmp_path)["val"][1]
    assert tuple(x.shape) == TASKS["lra_listops"].shape and x.dtype == torch.int64 and int(y) == 3
    assert int(x.max()) < TASKS["lra_listops"].vocab_size
    p = tmp_path / "ptb"
    p.mkdir()
    for f in ("train", "valid", "test"):
        (p / f"ptb.char.{f}.txt").write_text("a b _ c\n" * 120)
    x, y = make_datasets("char_ptb", tmp_path)["test"][0]
    assert tuple(x.shape) == TASKS["char_ptb"].shape == tuple(y.shape)


@pytest.mark.parametrize(
    "name",
    ["digits", "digits_permuted", "digits2d", "copy_memory", "adding_problem", "kernel_fitting"],
)
def test_offline_tasks_build_with_the_listed_shape(name):
    sets = make_datasets(name, None)
    x, y = sets["train"][0]
    assert tuple(x.shape) == TASKS[name].shape
    if TASKS[name].num_classes is not None and name != "copy_memory":
        assert y.dtype == torch.int64 and 0 <= int(y) < TASKS[name].num_classes


@pytest.mark.skipif(
    aeon_data_dir() is None, reason="aeon wheel not installed (pip install --no-deps aeon==1.6.0)"
)
def test_japanese_vowels_task_with_drops():
    sets = make_datasets("japanese_vowels", None, drop_rate=0.3)
    x, _ = sets["test"][0]
    assert x.shape[0] == 12 + 1 and x.shape[1] <= 29  # observed channel appended
    assert int((x[-1] == 0).sum()) == int(x.shape[1] * 0.3)


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'mnist3d'"):
        make_datasets("mnist3d", ".")


def test_data_package_imports_only_torch_and_numpy():
    src = Path(ckconv.data.__file__).parent
    for f in src.glob("*.py"):
        tree = ast.parse(f.read_text())
        for node in tree.body:  # module-level imports only; lazy imports live inside functions
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for n in names:
                top = n.split(".")[0]
                assert not n.startswith(("ckconv.nn", "ckconv.models", "ckconv.app")), (
                    f"{f.name} imports {n}"
                )
                assert (
                    top in {"torch", "numpy", "ckconv", "__future__"}
                    or top in sys.stdlib_module_names
                ), f"{f.name} imports {n} at module level"
    code = (
        "import sys, ckconv.data, ckconv.data.registry; "
        "heavy = [m for m in ('sklearn', 'scipy', 'PIL', 'aeon', 'matplotlib', 'lightning', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
