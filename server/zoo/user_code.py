"""Model classes from the administrator's user-code folder (``CONVLENS_USER_CODE_DIR``, default
``<models_dir>/code``): a catalogue entry's ``module = "mynet:MyNet"`` names ``<code dir>/mynet.py`` (or
the package ``mynet/``) and the class in it.

Importing that code runs it, which is the administrator's decision like any settings file: it happens
only for entries of ``catalogue.toml`` (when the catalogue is registered, at start-up) and for
``convlens models add``; nothing a web user sends names a module (docs/SECURITY.md).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from torch import nn

from server.errors import InvalidInputError

_REF = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
PACKAGE = "convlens_user_code"  # the user modules live under this name in sys.modules
_cache: dict[tuple[str, int], ModuleType] = {}


def parse_ref(ref: str) -> tuple[str, str]:
    """``"mynet:MyNet"`` -> ``("mynet", "MyNet")``; anything else is a readable error."""
    match = _REF.match(ref.strip())
    if match is None:
        raise InvalidInputError(
            f"module = '{ref}' should read 'file:Class', e.g. 'mynet:MyNet' for class MyNet in mynet.py "
            "of the user-code folder (dotted names for packages: 'pkg.nets:MyNet')."
        )
    return match["module"], match["attr"]


def module_file(module: str, code_dir: Path) -> Path:
    """The file of ``module`` inside ``code_dir`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
    base = code_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise InvalidInputError(
        f"No '{module.replace('.', '/')}.py' in the user-code folder {code_dir} "
        "(CONVLENS_USER_CODE_DIR): put the file that defines the model class there."
    )


def _import(module: str, path: Path, code_dir: Path) -> ModuleType:
    key = (str(path), path.stat().st_mtime_ns)
    if key in _cache:
        return _cache[key]
    name = f"{PACKAGE}.{module}"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look the module up there
    sys.path.insert(0, str(code_dir))  # the file may import its neighbours
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise InvalidInputError(
            f"Importing '{path.name}' from the user-code folder failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.remove(str(code_dir))
    _cache[key] = mod
    return mod


def resolve_class(ref: str, code_dir: Path) -> type[nn.Module]:
    """The ``nn.Module`` subclass that ``ref`` names in ``code_dir``, imported (once per file version)."""
    module, attr = parse_ref(ref)
    mod = _import(module, module_file(module, code_dir), code_dir)
    obj: object = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(
                n for n, v in vars(mod).items() if isinstance(v, type) and issubclass(v, nn.Module)
            )
            hint = f" It defines: {', '.join(found)}." if found else " It defines no nn.Module class."
            raise InvalidInputError(f"'{module}' has no '{attr}'.{hint}")
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise InvalidInputError(f"'{ref}' is not a torch.nn.Module class.")
    return obj


def instantiate(cls: type[nn.Module], kwargs: dict, ref: str) -> nn.Module:
    """``cls(**kwargs)``; a constructor that fails says so in one line."""
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise InvalidInputError(
            f"{ref}({_kwargs_text(kwargs)}) failed: {type(exc).__name__}: {exc}"
        ) from None


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
