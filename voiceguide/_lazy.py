"""Names a package exports, imported on first use (PEP 562): `import voiceguide`, the CLI's --help and the
speech workers load only what they touch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: a name in ``exports`` comes from ``package.<its module>``,
    imported the first time the name is asked for; any other name is an AttributeError, as for any module."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
