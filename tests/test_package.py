"""The package's public face: every module listed and described, loaded only when used."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys

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
