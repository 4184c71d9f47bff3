"""The public surface: every exported name resolves, nothing private is exported, and no
public-looking attribute sits outside ``__all__`` (a helper imported into a package
``__init__`` becomes API by accident).

The checks are plain functions over a module so that ``test_the_checks_catch_leaks`` can
prove, on a fabricated module, that each one fails when it should."""

from __future__ import annotations

import __future__
import importlib
import subprocess
import sys
import types

import pytest

import structgen

#: Packages with a public ``__all__`` (structgen.mask joins when it gets an ``__init__``).
PUBLIC_PACKAGES = ["structgen", "structgen.api", "structgen.integrations", "structgen.sampling",
                   "structgen.json_schema", "structgen.vocab", "structgen.automata", "structgen.mask"]


def unresolved_exports(module: types.ModuleType) -> list[str]:
    """Names in ``__all__`` that ``getattr`` cannot resolve (lazy ``__getattr__`` included)."""
    missing = []
    for name in module.__all__:
        try:
            getattr(module, name)
        except AttributeError:
            missing.append(name)
    return missing


def private_exports(module: types.ModuleType) -> list[str]:
    return [n for n in module.__all__ if n.startswith("_")]


def duplicate_exports(module: types.ModuleType) -> list[str]:
    return sorted({n for n in module.__all__ if module.__all__.count(n) > 1})


def stray_public_attributes(module: types.ModuleType) -> list[str]:
    """Public attributes that are neither exported nor submodules of ``module``.

    ``from __future__ import ...`` binds a compiler-feature object, not API: it is ignored."""
    exported = set(module.__all__)
    stray = []
    for name in dir(module):
        if name.startswith("_") or name in exported:
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType) and value.__name__ == f"{module.__name__}.{name}":
            continue  # a submodule, bound as an attribute once imported
        if isinstance(value, __future__._Feature):
            continue
        stray.append(name)
    return stray


def _packages_with_all() -> list[types.ModuleType]:
    mods = []
    for name in PUBLIC_PACKAGES:
        mod = importlib.import_module(name)
        if hasattr(mod, "__all__"):
            mods.append(mod)
    return mods


def _nonempty(per_module: dict) -> dict:
    return {k: v for k, v in per_module.items() if v}


@pytest.fixture(scope="module")
def packages():
    mods = _packages_with_all()
    # the packages that must have an __all__ do (structgen.mask is optional: a namespace package today)
    assert {m.__name__ for m in mods} >= set(PUBLIC_PACKAGES) - {"structgen.mask"}
    return mods


def test_every_exported_name_resolves(packages):
    problems = _nonempty({m.__name__: unresolved_exports(m) for m in packages})
    assert not problems, problems


def test_no_private_or_duplicate_name_is_exported(packages):
    problems = _nonempty({m.__name__: private_exports(m) + duplicate_exports(m) for m in packages})
    assert not problems, problems


def test_public_attributes_are_exported_or_submodules(packages):
    for name in structgen.__all__:  # resolve the lazy names first: they become attributes
        getattr(structgen, name)
    problems = _nonempty({m.__name__: stray_public_attributes(m) for m in packages})
    assert not problems, (
        f"public attributes outside __all__ (export them or rename with a leading underscore): {problems}")


def test_lazy_exports_resolve_and_unknown_names_raise():
    lazy = structgen._LAZY
    assert set(lazy) <= set(structgen.__all__)
    for name, (module, attr) in lazy.items():
        assert getattr(structgen, name) is getattr(importlib.import_module(module), attr)
    with pytest.raises(AttributeError, match="no_such_name"):
        structgen.no_such_name  # noqa: B018


def test_star_import_and_a_light_import():
    """``from structgen import *`` binds every exported name; ``import structgen`` alone
    imports neither torch nor transformers (the model-side names are lazy)."""
    code = ("from structgen import *\nimport structgen\n"
            "print([n for n in structgen.__all__ if n not in globals()])")
    out = subprocess.run([sys.executable, "-c", "import sys; import structgen; print('torch' in sys.modules, "
                          "'transformers' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_checks_catch_leaks():
    """Each check fails on a fabricated leaky package (so the tests above can fail)."""
    leaky = types.ModuleType("leaky")
    leaky.__all__ = ["Public", "_private", "missing", "Public"]
    leaky.Public = object()
    leaky._private = object()
    leaky.helper = lambda: None          # public, not exported
    leaky.os = importlib.import_module("os")  # an imported module, not a submodule
    leaky.annotations = __future__.annotations
    assert unresolved_exports(leaky) == ["missing"]
    assert private_exports(leaky) == ["_private"]
    assert duplicate_exports(leaky) == ["Public"]
    assert stray_public_attributes(leaky) == ["helper", "os"]
