# ultralytics-weighted, AGPL-3.0 license
"""Whether the installed Ultralytics can be balanced: the one release check, made without importing Ultralytics.

`activate()` installs the patch surface on a release inside `SUPPORTED_ULTRALYTICS` and only the refusal of the keys
outside it; the commands call `check_host()` before they decide where Ultralytics' log goes; `patch` reads a checkout's
version with `package_version`. Imports `packaging` and the key declaration only.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ultralytics_weighted.extensions.keys import BALANCING_KEYS

# As in pyproject.toml (tests/test_host.py checks it), not read from the installed metadata, which reorders the bounds
# in messages and lags pyproject.toml in an editable install; the floor is the first release with everything used
SUPPORTED_ULTRALYTICS = ">=8.4.130,<8.5"


def is_supported(version: str, supported: str = SUPPORTED_ULTRALYTICS) -> bool:
    """Return whether an Ultralytics version lies in a PEP 440 range, its development releases included.

    The one release check, with `packaging`: Ultralytics' `check_version` takes such ranges too, but importing it
    imports Ultralytics, which `check_host` must not do yet.

    Examples:
        >>> is_supported("8.4.190"), is_supported("8.4.129"), is_supported("8.5.0"), is_supported("8.4.200.dev1")
        (True, False, False, True)
    """
    try:
        return SpecifierSet(supported).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def package_version(package: Path) -> str | None:
    """Return `__version__` of an ultralytics package folder, read from its `__init__.py` without importing it."""
    init = package / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    return match.group(1) if match else None


class UnsupportedUltralyticsError(RuntimeError):
    """Class-balanced training was asked for with an Ultralytics release or feature set the plugin cannot serve."""


def unsupported_message(version: str, reason: str | None = None) -> str:
    """Return the one message refusing the balancing keys, naming the installed and the supported releases."""
    from ultralytics_weighted import __version__

    why = reason or f"ultralytics {version} is installed, but ultralytics-weighted {__version__} supports " + (
        f"ultralytics{SUPPORTED_ULTRALYTICS}"
    )
    return (
        f"class_balance is not available: {why}. Install a supported release (pip install "
        f"'ultralytics{SUPPORTED_ULTRALYTICS}'), or drop {', '.join(BALANCING_KEYS)} to train without balancing; "
        "everything else in Ultralytics works as without ultralytics-weighted."
    )


def check_host() -> None:
    """Raise UnsupportedUltralyticsError unless the installed Ultralytics can be balanced (used by the commands).

    The version is read from the package's `__init__.py` without importing it, so that a command can still decide
    where Ultralytics' log goes before Ultralytics is imported.

    Raises:
        UnsupportedUltralyticsError: If the release is outside `SUPPORTED_ULTRALYTICS`.
    """
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    version = package_version(Path(spec.origin).parent) if spec and spec.origin else None
    if version and not is_supported(version):
        raise UnsupportedUltralyticsError(unsupported_message(version))
