"""The package's public face: every module listed and described, loaded only when used."""

from __future__ import annotations

import ast
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import neuron_concepts


def run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (this one has long imported torch)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_the_package_loads_no_module_and_not_torch():
    result = run_python(
        "import sys, neuron_concepts\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('neuron_concepts.'))\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
        "assert not loaded, loaded\n")
    assert result.returncode == 0, result.stderr


def test_a_module_loads_on_first_access():
    result = run_python(
        "import sys, neuron_concepts\n"
        "errors = neuron_concepts.errors\n"
        "assert errors is sys.modules['neuron_concepts.errors']\n"
        "assert 'torch' not in sys.modules\n"
        "from neuron_concepts import wordnet\n"
        "assert wordnet is sys.modules['neuron_concepts.wordnet']\n")
    assert result.returncode == 0, result.stderr


def test_all_lists_every_module_and_the_docstring_describes_each():
    modules = {m.name for m in pkgutil.iter_modules(neuron_concepts.__path__)}
    assert set(neuron_concepts.__all__) == modules
    described = [line.split("``")[1] for line in neuron_concepts.__doc__.splitlines()
                 if line.startswith("- ``")]
    assert sorted(described) == sorted(modules)
    assert set(dir(neuron_concepts)) >= modules


def test_unknown_attributes_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        neuron_concepts.nonexistent  # noqa: B018


@pytest.mark.parametrize("name", sorted(neuron_concepts.__all__))
def test_no_module_imports_a_private_name_of_another(name):
    """Helpers shared between modules are public: ``from .x import _y`` means one is not."""
    source = importlib.util.find_spec(f"neuron_concepts.{name}").origin
    tree = ast.parse(open(source, encoding="utf-8").read())
    private = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names if alias.name.startswith("_") and node.module != "__future__"]
    assert not private, f"{name} imports {private}"


# Workflow scripts whose jobs run no model: tables, figures, maps, concept sets, the probe
# manifest, provenance, the browser. Each pays Python's start-up only, not torch's import.
MODEL_FREE_SCRIPTS = ["ablation_table", "browser", "concept_discovery_table", "concept_set",
                      "convis_figures", "convis_saliency", "convis_top_synsets",
                      "convis_vocabulary", "crop_comparison_figure", "evaluate_descriptions",
                      "neuron_panel_figure", "probe_manifest", "provenance", "stability_table"]


@pytest.mark.parametrize("script", MODEL_FREE_SCRIPTS)
def test_jobs_that_run_no_model_never_import_torch(script):
    source = (Path(__file__).resolve().parents[1] / "workflow_scripts" / f"{script}.py").read_text()
    imports = [line for line in source.splitlines()
               if re.match(r"(from|import) neuron_concepts", line)]
    assert imports, f"{script} imports nothing from the package"
    result = run_python("import sys\n" + "\n".join(imports) + "\n"
                        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    assert result.returncode == 0, (script, result.stderr[-2000:])


def test_the_imagenet_class_lists_load_without_torch():
    """Concept sets, manifests and evaluations read timm's class lists: finding them must not
    import timm, which imports torch (seconds per job)."""
    result = run_python(
        "import sys\n"
        "from neuron_concepts import data, evaluation\n"
        "assert len(data.imagenet_label_lines()) == len(data.imagenet_wnids()) == 1000\n"
        "assert 'tabby, tabby cat' in evaluation.class_texts()\n"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'heavy import'\n")
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- layering

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root`` with the contracts of its pyproject.toml
    (import-linter: the test extras)."""
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)


def test_the_package_keeps_its_import_contracts():
    """Layers (no cycle, formats below methods, methods below figures, every module placed),
    no torch import in the light modules, no matplotlib below the figures."""
    result = lint_imports(ROOT)
    assert "No module named 'importlinter'" not in result.stderr, "pip install -e '.[test]'"
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def copy_package(target: Path) -> Path:
    """The package and pyproject.toml copied under ``target``; the copy's package folder."""
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(ROOT / "neuron_concepts", target / "neuron_concepts",
                    ignore=shutil.ignore_patterns("__pycache__", "templates"))
    return target / "neuron_concepts"


@pytest.mark.parametrize("module, line, contract", [
    # a cycle: io -> figures -> io (inside a function, as grimp counts it)
    ("io", "def _drawn():\n    from . import figures\n", "layers, top to bottom"),
    # a format importing an algorithm, one layer down the other way
    ("convis_grid", "from . import convis_volume\n", "layers, top to bottom"),
    # a method that draws
    ("www", "import matplotlib\n", "nothing below the figures draws"),
    # a light module importing torch at module level
    ("io", "import torch\n", "light modules import no torch"),
])
def test_a_broken_contract_fails_the_linter(tmp_path, module, line, contract):
    package = copy_package(tmp_path)
    source = package / f"{module}.py"
    source.write_text(source.read_text() + "\n\n" + line)
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout[-2000:]
    broken = [row.strip() for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert f"{contract} BROKEN" in broken, result.stdout[-3000:]


def test_a_new_module_must_be_placed_in_a_layer(tmp_path):
    package = copy_package(tmp_path)
    (package / "unplaced.py").write_text('"""A module no layer names."""\n')
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "unplaced" in result.stdout, result.stdout[-2000:]


def test_library_functions_are_short_and_workflow_scripts_shallow():
    """Longest library function under 60 lines; no workflow script nests deeper than 3 blocks."""
    long = [(path.name, node.name, node.end_lineno - node.lineno + 1)
            for path in sorted((ROOT / "neuron_concepts").glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 >= 60]
    assert long == [], f"functions of 60 lines or more: {long}; split them"

    blocks = (ast.For, ast.While, ast.If, ast.With, ast.Try)

    def depth(node, level=0):
        return max([level, *(depth(child, level + isinstance(child, blocks))
                             for child in ast.iter_child_nodes(node))])

    deep = {path.name: depth(ast.parse(path.read_text()))
            for path in sorted((ROOT / "workflow_scripts").glob("*.py"))}
    assert {name: d for name, d in deep.items() if d > 3} == {}
