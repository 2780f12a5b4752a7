# ultralytics-weighted, AGPL-3.0 license
"""Activation: add the keys to Ultralytics' defaults and apply the patch surface as its modules are imported.

`activate()` is called by the startup hook right after `import ultralytics`, by `import ultralytics_weighted` (as soon
as Ultralytics is imported), or explicitly as `ultralytics_weighted.activate()`. Nothing else activates the plugin:
importing a module of the package never does. `deactivate()` undoes the table and the keys (tests).
"""

from __future__ import annotations

from pathlib import Path

from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.host import surface
from ultralytics_weighted.host.release import is_supported
from ultralytics_weighted_hook import when_imported


def _add_default_keys(utils) -> None:
    """Add the keys to DEFAULT_CFG_DICT (the same dict object every module imported) and the DEFAULT_CFG namespace."""
    surface.insert_default_keys(utils.DEFAULT_CFG_DICT)
    for k, v in DEFAULTS.items():
        setattr(utils.DEFAULT_CFG, k, v)


def _remove_default_keys(utils) -> None:
    for k in DEFAULTS:
        utils.DEFAULT_CFG_DICT.pop(k, None)
        vars(utils.DEFAULT_CFG).pop(k, None)


def _apply_unless_it_fails(row: surface.Replacement, module) -> None:
    """Apply a row as its module is imported; an error refuses `class_balance` with the reason, never breaks the import.

    The row runs inside Ultralytics' own import of `module` (a stock `yolo` command's too), which must not fail
    because of this plugin.
    """
    try:
        surface._apply(row, module)
    except Exception as error:
        surface._UNAVAILABLE[row.key] = f"{row.key} could not be wrapped ({type(error).__name__}: {error})"


def activate() -> None:
    """Activate class-balanced training in this process (idempotent).

    Imports `ultralytics` (and so torch) if it has not been imported yet; the trainer modules are patched when they are
    first imported. On an unsupported Ultralytics release only the refusal of the balancing keys is installed.

    Examples:
        >>> from ultralytics_weighted.host.activation import activate
        >>> activate()
        >>> from ultralytics.cfg import get_cfg
        >>> get_cfg(overrides={"class_balance": 0.5, "balance_agg": "sum"}).class_balance
        0.5
    """
    import ultralytics

    if (Path(ultralytics.__file__).parent / "data" / "balance.py").exists():
        return  # Ultralytics already balances natively (the patch series is applied): nothing to add
    supported = is_supported(ultralytics.__version__)
    if supported:
        import ultralytics.utils

        _add_default_keys(ultralytics.utils)
    for row in surface.PATCH_SURFACE if supported else surface.REFUSAL_SURFACE:
        if row.key not in surface._REGISTERED:
            surface._REGISTERED.add(row.key)
            when_imported(row.module, lambda module, row=row: _apply_unless_it_fails(row, module))


def deactivate() -> None:
    """Undo `activate()`: restore every replaced attribute and remove the keys (rows not yet applied stay pending)."""
    import ultralytics.utils

    for key, (holder, name, original) in list(surface._ORIGINALS.items()):
        setattr(holder, name, original)
        del surface._ORIGINALS[key]
    surface._REGISTERED.clear()
    surface._UNAVAILABLE.clear()
    _remove_default_keys(ultralytics.utils)
