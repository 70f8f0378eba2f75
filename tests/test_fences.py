"""The dependency fences between harness/'s subpackages, as tests rather than comments.

- records/ and leaderboard/ import neither torch nor Ray (the site builds from results/ alone,
  on a machine with neither), and of the engine only records/ and the torch-free metrics;
- only run/scheduler.py imports Ray;
- nothing below run/ (api/, data/, models/, training/, evaluation/, cost/, records/) imports
  run/ or cli/, and run/ never imports cli/: the adapter author's surface never pulls in the
  machinery that runs trials.

Static checks read every import statement, function-level ones included (a lazy import is
still a dependency); the torch-free fence is also checked by importing each module for real.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
BELOW_RUN = ("api", "data", "models", "training", "evaluation", "cost", "records")
TORCH_FREE = {
    # package: the harness modules (besides itself and harness) it may import
    "records": {"harness.records", "harness.evaluation", "harness.evaluation.metrics"},
    "leaderboard": {"harness.records", "harness.evaluation", "harness.evaluation.metrics"},
}


def _modules(package: str) -> list[Path]:
    return sorted((HARNESS / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module an ``import``/``from ... import`` in ``path`` names, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _reaches(imports: set[str], package: str) -> set[str]:
    return {m for m in imports if m == package or m.startswith(package + ".")}


def test_only_the_scheduler_imports_ray() -> None:
    importers = {_name(p) for p in HARNESS.rglob("*.py") if _reaches(_imports(p), "ray")}
    assert importers == {"harness.run.scheduler"}


@pytest.mark.parametrize("package", BELOW_RUN)
def test_nothing_below_run_imports_run_or_the_command_line(package: str) -> None:
    for path in _modules(package):
        imports = _imports(path)
        assert not _reaches(imports, "harness.run"), f"{_name(path)} imports harness.run"
        assert not _reaches(imports, "harness.cli"), f"{_name(path)} imports harness.cli"


def test_run_never_imports_the_command_line() -> None:
    for path in _modules("run"):
        assert not _reaches(_imports(path), "harness.cli"), f"{_name(path)} imports harness.cli"


@pytest.mark.parametrize("package", sorted(TORCH_FREE))
def test_torch_free_packages_import_only_torch_free_modules(package: str) -> None:
    allowed = TORCH_FREE[package] | {"harness", f"harness.{package}"}
    for path in _modules(package):
        engine = {m for m in _imports(path) if m.startswith("harness")}
        engine = {m for m in engine if not m.startswith(f"harness.{package}.")}
        # ``from harness.records import schema`` names harness.records.schema: allowed by prefix
        stray = {m for m in engine if not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not stray, f"{_name(path)} imports {sorted(stray)}"
        assert not _reaches(_imports(path), "torch"), f"{_name(path)} imports torch"


@pytest.mark.parametrize("package", sorted(TORCH_FREE))
def test_importing_every_module_of_a_torch_free_package_loads_neither_torch_nor_ray(
    package: str,
) -> None:
    modules = [_name(p) for p in _modules(package)]
    code = (
        f"import sys, {', '.join(modules)}; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=HARNESS.parent,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(HARNESS.parent), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_every_subpackage_says_what_it_owns() -> None:
    for init in HARNESS.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring, f"{init.parent.name}/ has no docstring saying what it owns"


def test_each_leaderboard_module_imports_only_those_listed_above_it() -> None:
    """The order ``harness/leaderboard/__init__.py`` lists its modules in is their layering."""
    docstring = ast.get_docstring(ast.parse((HARNESS / "leaderboard" / "__init__.py").read_text()))
    order = re.findall(r"^    (\w+)\.py ", docstring or "", flags=re.M)
    assert sorted(order) == sorted(p.stem for p in _modules("leaderboard") if p.stem != "__init__")
    for k, name in enumerate(order):
        imports = _imports(HARNESS / "leaderboard" / f"{name}.py")
        used = {m.split(".")[2] for m in imports if m.startswith("harness.leaderboard.")}
        assert used <= set(order[:k]), f"{name}.py imports {sorted(used - set(order[:k]))}"


CODE = [HARNESS, HARNESS.parent / "methods", HARNESS.parent / "benchmarks"]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def test_modules_and_functions_stay_small_enough_to_read() -> None:
    """One concept a module (at most 400 lines), functions short (at most 60 lines)."""
    too_long = []
    for path in (p for folder in CODE for p in sorted(folder.rglob("*.py"))):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.name}: {node.name}() {lines} lines")
    assert too_long == []
