# ultralytics-weighted, AGPL-3.0 license
"""compare's variant grammar: what `variants=none,mean,sum@0.5,mean+balance_floor=1,cls_pw=1.0,mean+tau=1` means.

A variant is one or more parts joined by `+`: `none` (stock shuffling), an aggregation (`mean`, `sum`, `auto`, ... at
strength 1), an aggregation with a strength (`mean@0.5`), or any train key=value such as `cls_pw=1.0` (Ultralytics'
loss-side class weighting) or `balance_floor=1`; e.g. `mean+balance_floor=1` or `auto@0.5+balance_ramp=0.5`. A part
`tau=T` is no train key: `mean+tau=1` is the trained run of `mean` (the same folder, trained once) with its class prior
corrected by T after training (`adjust`), so the tables show stock, balanced and corrected side by side with the same
training time. A part `data=other.yaml` trains the variant on its own data YAML (e.g. one with `class_weights`), which
must have the compared data's val images, as every run is validated on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ultralytics_weighted.extensions.config import ALL_AGGREGATIONS, balancing_on, check_rfs_settings, check_tau
from ultralytics_weighted.extensions.keys import DEFAULTS
from ultralytics_weighted.extensions.schedule import BalanceSchedule, schedule_from_args


@dataclass
class Variant:
    """One way to train: a name for tables, the train keys it sets and, for a tau variant, its correction.

    A tau variant (`mean+tau=1`) trains nothing of its own: `base` names the variant whose trained runs it corrects
    by `tau` (`mean`), and its runs share that variant's folders.
    """

    name: str
    overrides: dict = field(default_factory=dict)
    tau: float | None = None
    base: str | None = None

    @property
    def slug(self) -> str:
        """Folder-safe name of the trained variant (the base variant's for a tau variant)."""
        name = self.name if self.tau is None else self.base
        return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.replace("@", "_s"))

    def schedule(
        self, classes: list[np.ndarray], nc: int, epochs: int, multipliers: dict | None = None
    ) -> BalanceSchedule | None:
        """Return the balance schedule this variant trains with, or None for stock shuffling.

        `multipliers` are the weights of the variant's data YAML (`DataWeights.multipliers`): as in training, they
        weight the draws also without `class_balance`.
        """
        if not balancing_on(self.overrides, multipliers):
            return None
        return schedule_from_args({**self.overrides, "epochs": epochs}, classes, nc, multipliers)


def _parse_part(part: str, token: str) -> dict:
    """Return the train keys of one `+` part of variant `token`: none, agg, agg@strength or key=value."""
    from ultralytics.cfg import smart_value

    if part == "none":
        return {}
    if "=" in part:
        key, value = (x.strip() for x in part.split("=", 1))
        if not key or not value:
            raise ValueError(f"variant '{token}': '{part}' is not a key=value part.")
        return {key: smart_value(value)}
    agg, at, strength = part.partition("@")
    if agg not in ALL_AGGREGATIONS:
        raise ValueError(
            f"unknown variant '{token}'. A variant is none, {', '.join(ALL_AGGREGATIONS)} (optionally with @strength, "
            "e.g. mean@0.5), a train key=value such as cls_pw=1.0, or such parts joined by '+' "
            "(e.g. mean+balance_floor=1)."
        )
    try:
        value = float(strength) if at else 1.0
    except ValueError:
        raise ValueError(f"variant '{token}': the strength '{strength}' is not a number (e.g. {agg}@0.5).") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"variant '{token}': the strength must lie in (0, 1].")
    return {"class_balance": value, "balance_agg": agg}


def _check_rfs(overrides: dict, token: str) -> None:
    """Refuse what `config.check_rfs_settings` refuses (e.g. rfs+balance_floor=1), naming variant `token`."""
    try:
        check_rfs_settings(overrides)
    except ValueError as e:
        raise ValueError(f"variant '{token}': {e}") from None


def _parse_tau(value: str, token: str) -> float:
    """Return the tau of a `tau=T` part of variant `token`: a finite number >= 0 (`config.check_tau`)."""
    try:
        return check_tau(value)
    except ValueError as e:
        raise ValueError(f"variant '{token}': {e} E.g. mean+tau=1.") from None


def parse_variants(text: str) -> list[Variant]:
    """Parse a comma-separated variant list such as 'none,mean,sum@0.5,mean+balance_floor=1,cls_pw=1.0,mean+tau=1'.

    Args:
        text (str): The `variants=` value.

    Returns:
        (list[Variant]): The variants, in the given order, `none` first if present.

    Raises:
        ValueError: For an unknown aggregation, a strength that is not a number or outside (0, 1], a balancing key
            or tau without an aggregation to act on, a combination `config.check_rfs_settings` refuses, a tau that is
            not a finite number >= 0, a key set twice in one variant, a duplicate or an empty list. The message names
            the variant.

    Examples:
        >>> [(v.name, v.overrides) for v in parse_variants("none,mean@0.5,cls_pw=1.0")]
        [('none', {}), ('mean@0.5', {'class_balance': 0.5, 'balance_agg': 'mean'}), ('cls_pw=1.0', {'cls_pw': 1.0})]
        >>> parse_variants("auto+balance_floor=1")[0].overrides
        {'class_balance': 1.0, 'balance_agg': 'auto', 'balance_floor': 1}
        >>> parse_variants("rfs@0.5+balance_rfs_threshold=0.01")[0].overrides
        {'class_balance': 0.5, 'balance_agg': 'rfs', 'balance_rfs_threshold': 0.01}
        >>> v = parse_variants("mean@0.5+tau=1")[0]
        >>> v.overrides, v.tau, v.base, v.slug
        ({'class_balance': 0.5, 'balance_agg': 'mean'}, 1.0, 'mean@0.5', 'mean_s0.5')
    """
    variants = []
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        overrides, tau, trained = {}, None, []  # trained: the parts of the base variant (all but tau=)
        for part in (p.strip() for p in token.split("+")):
            key, _, value = part.partition("=")
            if key.strip() == "tau":
                if tau is not None:
                    raise ValueError(f"variant '{token}' sets tau twice.")
                tau = _parse_tau(value.strip(), token)
                continue
            trained.append(part)
            keys = _parse_part(part, token)
            if twice := overrides.keys() & keys.keys():
                raise ValueError(f"variant '{token}' sets {', '.join(sorted(twice))} twice.")
            overrides.update(keys)
        unused = [k for k in DEFAULTS if k != "class_balance" and k in overrides]
        if unused and not balancing_on(overrides):
            raise ValueError(
                f"variant '{token}' sets {', '.join(unused)} without balancing, so it would train as stock: add an "
                f"aggregation, e.g. mean+{unused[0]}={overrides[unused[0]]}."
            )
        _check_rfs(overrides, token)
        if tau is not None and not balancing_on(overrides):
            raise ValueError(
                f"variant '{token}': tau corrects the prior of a balanced run and this variant trains without "
                "balancing: add an aggregation, e.g. mean+tau=1."
            )
        variants.append(Variant(token, overrides, tau, "+".join(trained) if tau is not None else None))
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ValueError(f"variants={text} must name at least one variant, each once.")
    return sorted(variants, key=lambda v: v.name != "none")
