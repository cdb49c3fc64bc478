"""The rules of the house that import-linter cannot check (../shared/DESIGN.md, "The package").

Rule 5: only ``grader/core/settings.py`` reads the environment. A module that reads
``os.environ`` (or ``os.getenv``, ``os.environb``) elsewhere fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GRADER = Path(__file__).resolve().parents[2] / "grader"
SETTINGS = GRADER / "core" / "settings.py"
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(source: str) -> list[int]:
    """The lines of ``source`` that touch the process environment through :mod:`os`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in ENVIRONMENT for alias in node.names):
            lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("source, expected", [
    ("import os\nx = os.environ.get('A')\n", [2]),
    ("import os\nos.getenv('A')\n", [2]),
    ("from os import environ\n", [1]),
    ("import os\nos.path.join('a')\nenviron = {}\nenviron.get('A')\n", []),
])
def test_environment_reads_are_found(source: str, expected: list[int]) -> None:
    assert environment_reads(source) == expected


def test_only_settings_reads_the_environment() -> None:
    found = [f"{path.relative_to(GRADER.parent)}:{line}"
             for path in sorted(GRADER.rglob("*.py")) if path != SETTINGS
             for line in environment_reads(path.read_text(encoding="utf-8"))]
    assert found == [], ("these read the environment outside grader/core/settings.py; add a function "
                         f"there and call it: {found}")
    assert environment_reads(SETTINGS.read_text(encoding="utf-8")), "settings.py reads the environment"


# Rule 3: each package has a face (its __init__.py: a docstring, __all__) and other packages import
# through it. A function named as its own module cannot be on its package's face (once the module
# is imported, the package's attribute of that name is the module): those two are imported whole.
NAMED_AS_THEIR_MODULE = {("grader.pipeline.verify", "verify"), ("grader.server.serve", "serve")}
# the student's side runs as a script (python -m grader.student.runner) and imports nothing of grader;
# the score's checks register themselves when grader.score.checks is imported
OWN_FACES = {"grader.student", "grader.student.kernel", "grader.score.checks"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(GRADER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _packages() -> list[Path]:
    return sorted(p.parent for p in GRADER.rglob("__init__.py"))


def test_every_package_has_a_face_whose_names_all_import() -> None:
    import importlib

    faceless, missing = [], []
    for folder in _packages():
        name = _module_name(folder / "__init__.py")
        package = importlib.import_module(name)
        if not (package.__doc__ or "").strip() or not hasattr(package, "__all__"):
            faceless.append(name)
            continue
        missing += [f"{name}.{attr}" for attr in package.__all__ if not hasattr(package, attr)]
    assert faceless == [], f"packages without a docstring and __all__ in their __init__.py: {faceless}"
    assert missing == [], f"names on a face that do not import: {missing}"


def cross_package_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """``line imported-module`` for each import in ``source`` (the text of ``module``, a package's
    ``__init__`` if ``is_package``) of a module of another package that does not go through that
    package's face."""
    here = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                and node.module.startswith("grader.")):
            continue
        if (GRADER.parent / Path(*node.module.split(".")) / "__init__.py").exists():
            continue  # a package: its face
        package = node.module.rsplit(".", 1)[0]
        if package in OWN_FACES or here == package or here.startswith(package + "."):
            continue
        if all((node.module, alias.name) in NAMED_AS_THEIR_MODULE for alias in node.names):
            continue
        found.append(f"{node.lineno} {node.module}")
    return found


def test_other_packages_import_through_the_face() -> None:
    found = [f"{path.relative_to(GRADER.parent)}:{hit}" for path in sorted(GRADER.rglob("*.py"))
             if "migrations" not in path.parts
             for hit in cross_package_imports(path.read_text(encoding="utf-8"), _module_name(path),
                                              is_package=path.name == "__init__.py")]
    assert found == [], ("these import a module of another package directly; import the name from the "
                         f"package (add it to that package's __init__.pyi if it is not there): {found}")


def test_a_direct_import_across_packages_is_found() -> None:
    source = ("from grader.data.hidden import ensure_hidden_test_set\n"  # another package's module
              "from grader.data import Listing\n"  # its face
              "from grader.pipeline.cache import ResultCache\n"  # a module of its own package
              "from grader.pipeline.verify import verify\n")  # named as its module
    assert cross_package_imports(source, "grader.pipeline.batch") == ["1 grader.data.hidden"]
