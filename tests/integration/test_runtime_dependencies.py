"""The package runs on its declared dependencies alone: ``pip install .`` (the README's
quickstart) has none of the dev extras. Every module of the package is imported, and the
CLI started, in a fresh interpreter where any installed distribution outside the runtime
dependency closure cannot be imported."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PACKAGE = "hybridinference"

CHECK = """
import importlib, importlib.abc, json, pkgutil, sys
blocked = set(json.loads(sys.argv[1]))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not a runtime dependency", name=name)
        return None

sys.meta_path.insert(0, Refuse())
import hybridinference
for module in pkgutil.walk_packages(hybridinference.__path__, "hybridinference."):
    if not module.name.endswith(".__main__"):  # it would run the CLI
        importlib.import_module(module.name)
from hybridinference.cli import main
try:
    main.main(args=["--help"], prog_name="hybridinference")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def runtime_closure(name: str) -> set[str]:
    """The distributions ``name`` needs at run time, itself included (no extras)."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = canonicalize_name(pending.pop())
        if current in seen:
            continue
        seen.add(current)
        for text in metadata.requires(current) or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def test_the_package_imports_without_dev_dependencies() -> None:
    allowed = runtime_closure(PACKAGE)
    blocked = sorted(
        module
        for module, distributions in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in allowed for d in distributions) and module.isidentifier()
    )
    assert "httpx" in blocked and "openai" in blocked  # the check can fail: dev-only
    assert "orjson" not in blocked and "uvicorn" not in blocked
    done = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(blocked)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "serve" in done.stdout
