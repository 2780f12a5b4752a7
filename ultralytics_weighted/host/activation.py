# ultralytics-weighted, AGPL-3.0 license
"""Activation: add the keys to Ultralytics' defaults and apply the patch surface as its modules are imported.

`activate()` is called by the startup hook right after `import ultralytics`, by `import ultralytics_weighted` (as soon
as Ultralytics is imported), or explicitly as `ultralytics_weighted.activate()`. Nothing else activates the plugin:
importing a module of the package never does. `deactivate()` undoes the table and the keys (tests). On an Ultralytics
that has the core natively (the patch series applied) the table is `native.NATIVE_SURFACE` and only the keys it lacks
are added: the plugin's extensions run on top of the native keys and sampler.
"""

from __future__ import annotations

from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.host import native, surface
from ultralytics_weighted.host.release import is_supported
from ultralytics_weighted_hook import when_imported

_ADDED_KEYS: set[str] = set()  # keys this plugin added to Ultralytics' defaults (a native core has two of them already)


def _add_default_keys(utils) -> None:
    """Add the keys to DEFAULT_CFG_DICT (the same dict object every module imported) and the DEFAULT_CFG namespace."""
    _ADDED_KEYS.update(k for k in DEFAULTS if k not in utils.DEFAULT_CFG_DICT)
    surface.insert_default_keys(utils.DEFAULT_CFG_DICT)
    for k in DEFAULTS:
        setattr(utils.DEFAULT_CFG, k, utils.DEFAULT_CFG_DICT[k])


def _remove_default_keys(utils) -> None:
    for k in _ADDED_KEYS:
        utils.DEFAULT_CFG_DICT.pop(k, None)
        vars(utils.DEFAULT_CFG).pop(k, None)
    _ADDED_KEYS.clear()


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
    first imported. On an unsupported Ultralytics release only the refusal of the balancing keys is installed; on one
    with the core natively (the patch series applied) the plugin's extensions go on top of it (`NATIVE_SURFACE`).

    Examples:
        >>> from ultralytics_weighted.host.activation import activate
        >>> activate()
        >>> from ultralytics.cfg import get_cfg
        >>> get_cfg(overrides={"class_balance": 0.5, "balance_agg": "sum"}).class_balance
        0.5
    """
    import ultralytics

    supported = is_supported(ultralytics.__version__)
    if supported:
        import ultralytics.utils

        _add_default_keys(ultralytics.utils)
    table = native.NATIVE_SURFACE if native.is_native_core() else surface.PATCH_SURFACE
    for row in table if supported else surface.REFUSAL_SURFACE:
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
