# ultralytics-weighted, AGPL-3.0 license
"""The checks of the plugin's train keys (declared in `keys.py`) and the schedule they describe (no Ultralytics import).

The upstream core checks its keys (`CORE_KEYS`) with Ultralytics' `check_cfg` (a fraction key and a str key) and
refuses an unknown `balance_agg` when it builds the train dataset; the plugin checks every key here, before training,
with messages that name the valid values.
"""

from __future__ import annotations

import difflib
import math
import sys
from pathlib import Path

from ultralytics_weighted.core.balance import AGGREGATIONS
from ultralytics_weighted.extensions.keys import DATA_YAML_KEYS, DEFAULTS, MARKER_KEY

# `balance_agg` in the plugin: the core's fixed aggregations, solved, and LVIS repeat factors (`repeat_factors.py`)
ALL_AGGREGATIONS = (*AGGREGATIONS, "auto", "rfs")
MAX_FLOOR = 1.0  # largest balance_floor: at 1 no image is skipped; above, every image repeats within an epoch


def balance_strength(value: bool | float | None) -> float:
    """Return the balancing strength in [0, 1] for a checked `class_balance` value (True = 1.0, False/None = 0.0)."""
    return float(value or 0.0)


def balancing_on(args, weights=None) -> bool:
    """Return whether a training with these train keys draws its train images other than stock shuffling does.

    The one place this is decided, for training, its checks, `stats`, `compare` and `demo`: with `class_balance` on
    (a strength above 0), or with weights from the data YAML (`weights`: `DataWeights`, its `multipliers`, or any
    truthy stand-in), which weight the draws also without `class_balance`. The upstream core, which stands alone,
    decides on `class_balance` alone (it has no data weights).

    Args:
        args (dict | SimpleNamespace): Train keys, checked by `check_balance_args`; a missing `class_balance` is off.
        weights (optional): The data YAML's weights, None (or empty) without.

    Returns:
        (bool): True if the train loader gets a balanced (or weighted) sampler.

    Examples:
        >>> balancing_on({"class_balance": 0.5}), balancing_on({"class_balance": False}), balancing_on({})
        (True, False, False)
        >>> balancing_on({"class_balance": 0.0}, weights={"class_multipliers": [1.0, 3.0]})
        True
    """
    value = args.get("class_balance") if isinstance(args, dict) else getattr(args, "class_balance", None)
    return balance_strength(value) > 0 or bool(weights)


def _not_finite(key: str, value) -> str | None:
    """Return the error for an empty value or one that is or spells a non-finite number (inf, -inf, nan), else None.

    The `yolo` CLI keeps 'inf' and 'nan' as strings (its `smart_value` does not parse them), a cfg file's `.inf` and
    Python's `float("inf")` arrive as floats: all of them are named as the value they are, not as a type error.
    """
    if isinstance(value, str) and not value.strip():
        return f"'{key}={value}' has no value."
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{key}={value}' is an invalid value: not a finite number."
    return None


def _check_number(cfg: dict, key: str, valid: str, low: float, high: float, examples: tuple = (1, 0.5)) -> None:
    """Check that `cfg[key]` (if present) is a finite int or float (not a bool) in [low, high], in check_cfg's style.

    `examples` are the valid int and float values the type error suggests.
    """
    if key not in cfg:
        return
    value = cfg[key]
    if error := _not_finite(key, value):
        raise ValueError(f"{error} Valid '{key}' values are {valid}.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"'{key}={value}' is of invalid type {type(value).__name__}. Valid '{key}' types are int (i.e. "
            f"'{key}={examples[0]}') or float (i.e. '{key}={examples[1]}')."
        )
    if not low <= value <= high:
        raise ValueError(f"'{key}={value}' is an invalid value. Valid '{key}' values are {valid}.")


def check_strength(strength) -> None:
    """Check a `class_balance` value (True, False or a strength in [0, 1]): the one check of the balancing strength.

    Raises:
        TypeError: If it is not a bool, int or float.
        ValueError: If it is not finite or lies outside [0, 1].

    Examples:
        >>> check_strength(0.5), check_strength(True)
        (None, None)
        >>> check_strength(2.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'class_balance=2.0' is an invalid value. Valid 'class_balance' values are True, False or a ...
    """
    valid = "True, False or a strength between 0.0 and 1.0 (1.0 = inverse class frequency, 0.5 = square root)"
    if error := _not_finite("class_balance", strength):
        raise ValueError(f"{error} Valid 'class_balance' values are {valid}.")
    if not isinstance(strength, (bool, int, float)):
        raise TypeError(
            f"'class_balance={strength}' is of invalid type {type(strength).__name__}. Valid 'class_balance' types are "
            "bool (i.e. 'class_balance=True') or float (i.e. 'class_balance=0.5')."
        )
    if not isinstance(strength, bool) and not 0.0 <= strength <= 1.0:
        raise ValueError(f"'class_balance={strength}' is an invalid value. Valid 'class_balance' values are {valid}.")


def check_aggregation(agg) -> None:
    """Check a `balance_agg` value (one of `ALL_AGGREGATIONS`): the one check of the aggregation.

    Raises:
        TypeError: If it is not a str.
        ValueError: If it names no aggregation.

    Examples:
        >>> check_aggregation("auto")
        >>> check_aggregation("solve")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_agg=solve' is an invalid value. Valid 'balance_agg' values are mean, max, median, sum, ...
    """
    if not isinstance(agg, str):
        raise TypeError(
            f"'balance_agg={agg}' is of invalid type {type(agg).__name__}. "
            f"Valid 'balance_agg' values are {', '.join(ALL_AGGREGATIONS)}."
        )
    if agg not in ALL_AGGREGATIONS:
        raise ValueError(
            f"'balance_agg={agg}' is an invalid value. Valid 'balance_agg' values are {', '.join(ALL_AGGREGATIONS)}."
        )


def check_tau(value) -> float:
    """Return a prior correction `tau=` (`adjust`, a `compare` variant, `correct_checkpoint`) as a float, checked once.

    The `balance_tau` train key is checked with the other train keys (`check_balance_args`), by the same rule.

    Args:
        value (str | int | float): The value as given (text from a command line, or a number).

    Returns:
        (float): tau, a finite number >= 0.

    Raises:
        ValueError: If it is not a number, negative, or not finite; one message for every command.

    Examples:
        >>> check_tau("1"), check_tau(0.5)
        (1.0, 0.5)
        >>> check_tau("-1")
        Traceback (most recent call last):
        ...
        ValueError: tau=-1 must be a finite number >= 0 (0 = no change, 1 = the data's prior): tau=-1 is invalid.
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = value.strip() if isinstance(value, str) else f"{value:g}" if number else repr(value)
    try:
        tau, why = float(value if number or isinstance(value, str) else "not a number"), "invalid"
    except ValueError:
        tau, why = math.nan, "not a number"
    if not 0.0 <= tau < math.inf:
        raise ValueError(
            f"tau={text} must be a finite number >= 0 (0 = no change, 1 = the data's prior): tau={text} is {why}."
        )
    return tau


def corrected_path(path: str | Path, tau: float) -> Path:
    """Return where a checkpoint corrected by tau goes by default: next to it, e.g. best.pt -> best-tau1.pt.

    Examples:
        >>> corrected_path("runs/detect/train/weights/best.pt", 0.5).name
        'best-tau0.5.pt'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}-tau{tau:g}{path.suffix}")


def check_correction_paths(
    path: str | Path, tau: float, save: str | Path | None = None, exist_ok: bool = False
) -> tuple[Path, Path]:
    """Return a prior correction's input checkpoint and the file it writes, checked before anything is loaded.

    `correct_checkpoint` calls it; `adjust` calls it first too, so that these refusals come before torch is imported.

    Args:
        path (str | Path): The checkpoint to correct.
        tau (float): Strength of the correction (names the default `save`, see `corrected_path`).
        save (str | Path, optional): Where to write; default `corrected_path(path, tau)`. Never the input itself.
        exist_ok (bool): Overwrite `save` if it exists; by default an existing file is kept.

    Returns:
        path (Path): The checkpoint, an existing file.
        save (Path): Where the corrected copy goes.

    Raises:
        FileNotFoundError: If `path` does not exist.
        FileExistsError: If `save` exists and `exist_ok` is False.
        ValueError: If `path` is a folder or `save` is the input.

    Examples:
        >>> check_correction_paths("missing.pt", 1.0)
        Traceback (most recent call last):
        ...
        FileNotFoundError: missing.pt does not exist.
    """
    path = Path(path)
    save = Path(save) if save else corrected_path(path, tau)
    if save.resolve() == path.resolve():
        raise ValueError(f"save={save} is the input checkpoint; the corrected model is written to a new file.")
    if save.exists() and not exist_ok:
        raise FileExistsError(f"{save} exists; choose another save=PATH, or exist_ok=True to overwrite it.")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; model= takes a checkpoint file, e.g. {path / 'weights' / 'best.pt'}.")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    return path, save


def check_balance_args(cfg: dict) -> None:
    """Check the balancing keys in a configuration dict, in Ultralytics' `check_cfg` error style.

    Args:
        cfg (dict): Configuration dictionary; only the balancing keys (`DEFAULTS`) are looked at.

    Raises:
        TypeError: If a key is None or has a type it cannot take (e.g. `class_balance=yes`).
        ValueError: If a value is out of range, not finite or not one of the choices (e.g. `class_balance=2`,
            `balance_floor=inf`, `balance_agg=foo`).

    Examples:
        >>> check_balance_args({"class_balance": 0.5, "balance_agg": "median", "balance_floor": 1, "balance_ramp": 0.5})
        >>> check_balance_args({"balance_agg": "foo"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_agg=foo' is an invalid value. Valid 'balance_agg' values are mean, max, median, sum, ...
        >>> check_balance_args({"balance_ramp": 2})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_ramp=2' is an invalid value. Valid 'balance_ramp' values are between 0.0 and 1.0 (...).
        >>> check_balance_args({"balance_start": 1.0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_start=1.0' is an invalid value. Valid 'balance_start' values are at least 0.0 and below...
        >>> check_balance_args({"balance_floor": float("inf")})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_floor=inf' is an invalid value: not a finite number. Valid 'balance_floor' values are ...
        >>> check_balance_args({"balance_floor": 1000})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_floor=1000' is an invalid value. Valid 'balance_floor' values are between 0.0 and 1 (...).
    """
    for key in DEFAULTS:
        if key in cfg and cfg[key] is None:
            raise TypeError(f"'{key}=None' is invalid. '{key}' must not be None.")
    if cfg.get(MARKER_KEY, True) is not True:
        raise ValueError(
            f"'{MARKER_KEY}={cfg[MARKER_KEY]}' is invalid: '{MARKER_KEY}' is no setting; the plugin sets it in every "
            "run's arguments, where it marks the checkpoints as needing ultralytics-weighted to resume. Remove it."
        )
    check_strength(cfg.get("class_balance", False))
    check_aggregation(cfg.get("balance_agg", DEFAULTS["balance_agg"]))
    _check_number(
        cfg,
        "balance_floor",
        f"between 0.0 and {MAX_FLOOR:g} (the least expected draws of each image per epoch; {MAX_FLOOR:g} already "
        "skips no image, and a higher floor would only repeat every image within one epoch, which is more epochs "
        "(epochs=) with weaker balancing)",
        0.0,
        MAX_FLOOR,
    )
    _check_number(
        cfg,
        "balance_ramp",
        "between 0.0 and 1.0 (the fraction of the epochs over which class_balance rises from 0)",
        0.0,
        1.0,
    )
    _check_number(
        cfg,
        "balance_start",
        "at least 0.0 and below 1.0 (the fraction of the epochs trained with stock sampling before balancing)",
        0.0,
        math.nextafter(1.0, 0.0),  # 1.0 itself would leave no balanced epoch
        (0, 0.5),  # 1 is out of range
    )
    _check_number(
        cfg,
        "balance_rfs_threshold",
        "above 0.0 and at most 1.0 (balance_agg=rfs repeats the images of classes found in fewer than this fraction "
        "of the train images; LVIS uses 0.001)",
        sys.float_info.min,  # t = 0 would repeat nothing
        1.0,
        (1, 0.001),
    )
    # a finite upper bound: tau=inf would make every offset infinite
    _check_number(
        cfg, "balance_tau", "finite and 0.0 or more (0 = off, 1 = the data's class prior)", 0.0, sys.float_info.max
    )


def check_rfs_settings(cfg: dict, weights=None) -> None:
    """Refuse what has no effect, or no meaning, beside LVIS repeat factors (or the threshold without them).

    The one check of these combinations, for training (before the run folder is made) and `compare`'s variants:
    `balance_floor` with `balance_agg=rfs` (every repeat factor is already >= 1, so no image is skipped),
    the data YAML's weights with it (repeat factors are LVIS' fixed rule, which takes no weights), and
    `balance_rfs_threshold` with another aggregation while balancing. `balance_ramp` and `balance_start` combine:
    they set each epoch's strength, which scales the exponent of the repeat factors.

    Args:
        cfg (dict): Train keys, checked by `check_balance_args`.
        weights (optional): The data YAML's weights (`DataWeights`), None (or empty) without.

    Raises:
        ValueError: One line naming the keys.

    Examples:
        >>> check_rfs_settings({"class_balance": True, "balance_agg": "rfs", "balance_ramp": 0.5})
        >>> check_rfs_settings({"class_balance": True, "balance_agg": "rfs", "balance_floor": 1})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'balance_floor=1' has no effect with balance_agg=rfs: every repeat factor is already >= 1, ...
    """
    settings = {**DEFAULTS, **cfg}
    threshold = settings["balance_rfs_threshold"]
    if settings["balance_agg"] != "rfs":
        if threshold != DEFAULTS["balance_rfs_threshold"] and balancing_on(settings):
            raise ValueError(
                f"'balance_rfs_threshold={threshold}' applies to balance_agg=rfs only, not to "
                f"balance_agg={settings['balance_agg']}: set balance_agg=rfs or remove balance_rfs_threshold."
            )
        return
    if settings["balance_floor"]:
        raise ValueError(
            f"'balance_floor={settings['balance_floor']}' has no effect with balance_agg=rfs: every repeat factor is "
            "already >= 1, so no image is skipped. Remove balance_floor."
        )
    if weights:
        raise ValueError(
            f"balance_agg=rfs cannot be combined with {', '.join(DATA_YAML_KEYS)} in the data YAML: LVIS repeat "
            "factors take no weights. Use balance_agg=mean (or auto) with them, or remove them."
        )


def unused_balance_keys(cfg: dict) -> list[str]:
    """Return 'key=value' for every other balancing key set away from its default while `class_balance` is off.

    Args:
        cfg (dict): Configuration dictionary (checked by `check_balance_args`).

    Returns:
        (list[str]): The keys that have no effect, e.g. ['balance_agg=sum']; empty when balancing is on.

    Examples:
        >>> unused_balance_keys({"class_balance": False, "balance_agg": "sum"})
        ['balance_agg=sum']
        >>> unused_balance_keys({"class_balance": 0.5, "balance_agg": "sum"})
        []
    """
    if balancing_on(cfg):
        return []
    return [f"{k}={cfg[k]}" for k in DEFAULTS if k != "class_balance" and k in cfg and cfg[k] != DEFAULTS[k]]


def data_key_hint(key: str) -> str | None:
    """Return where a data YAML weight key (`keys.DATA_YAML_KEYS`) goes when it was given as a train key, else None.

    Examples:
        >>> data_key_hint("class_weights")
        "'class_weights' belongs in the data YAML (next to names:), not among the train keys"
        >>> data_key_hint("classes") is None
        True
    """
    return (
        f"'{key}' belongs in the data YAML (next to names:), not among the train keys"
        if key in DATA_YAML_KEYS
        else None
    )


def check_keys(options: dict, valid: set[str], command: str) -> None:
    """Raise ValueError naming every key of a command's options that is not valid, with similar valid keys.

    Args:
        options (dict): The command's key=value options.
        valid (set[str]): The keys the command takes (its own and Ultralytics' train keys).
        command (str): The command's name, for the message.

    Raises:
        ValueError: For unknown keys, in one message.

    Examples:
        >>> check_keys({"epochs": 3}, {"epochs", "imgsz"}, "demo")
        >>> check_keys({"epoch": 3}, {"epochs", "imgsz"}, "demo")
        Traceback (most recent call last):
        ...
        ValueError: 'epoch' is not a valid key (similar: epochs). See `ultralytics-weighted demo --help`.
    """
    if unknown := [k for k in options if k not in valid]:
        similar = {k: difflib.get_close_matches(k, valid, n=3) for k in unknown}
        raise ValueError(
            "; ".join(
                data_key_hint(k)
                or f"'{k}' is not a valid key" + (f" (similar: {', '.join(similar[k])})" * bool(similar[k]))
                for k in unknown
            )
            + f". See `ultralytics-weighted {command} --help`."
        )
