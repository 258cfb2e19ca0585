"""The layers hold themselves: import-linter's contract (pyproject.toml) passes on the tree
and fails on a copy in which a method imports the command line."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {"PYTHONPATH": str(root / "src"), "PATH": str(exe.parent)}
    return subprocess.run([str(exe)], cwd=root, env=env, capture_output=True, text=True)


def test_the_tree_keeps_its_layers():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_a_method_that_imports_the_cli_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    base = tmp_path / "src/impasto/methods/base.py"
    base.write_text(base.read_text() + "\nfrom ..cli import main  # noqa: E402\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "impasto.methods is not allowed to import impasto.cli" in done.stdout
