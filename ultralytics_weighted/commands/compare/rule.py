# ultralytics-weighted, AGPL-3.0 license
"""compare's decision rule (docs/decision-rule.md) and the τ frontier of a balanced classifier. Numpy only.

- `rare_tier`, `decision_rule`, `decision_across_datasets`: the non-inferiority rule applied to per-class rows;
- `tau_frontier`: balanced and prior-weighted accuracy of a balanced classifier corrected by each τ, no retraining.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ultralytics_weighted.commands.compare.metrics import class_recall, prior_accuracy

NONINFERIORITY_MARGIN = (
    0.02  # δ of docs/decision-rule.md: the largest loss of a class's recall or AP50 the rule accepts
)
RARE_TIER_SHARE = 1 / 3  # docs/decision-rule.md: the rare tier is the rarest third of the classes by train instances


def rare_tier(train_instances: dict, share: float = RARE_TIER_SHARE) -> list:
    """Return the rare tier of docs/decision-rule.md: the ceil(share * K) classes with the fewest train instances.

    Args:
        train_instances (dict): Class -> train instances, for the K classes of the report.
        share (float): Share of the classes in the tier.

    Returns:
        (list): The tier's classes, rarest first (ties: in the dict's order).

    Examples:
        >>> rare_tier({"car": 900, "bus": 40, "bike": 120, "truck": 300, "tram": 5})
        ['tram', 'bus']
    """
    ranked = sorted(train_instances, key=lambda c: train_instances[c])  # stable: ties keep the dict's order
    return ranked[: max(1, math.ceil(share * len(ranked) - 1e-9))]


def decision_rule(
    rows: dict, train_instances: dict, margin: float = NONINFERIORITY_MARGIN, share: float = RARE_TIER_SHARE
) -> dict:
    """Return what docs/decision-rule.md says of one variant on one dataset, from its per-class rows of one metric.

    (a) Non-inferiority: every class's lower bound (the unadjusted 95% interval; requiring all of them at once is an
    intersection-union test, so no adjustment is needed) is >= -margin; a class without an interval fails (less evidence
    never passes). (b) The rare tier is better: at least one of its classes is **better** under family-wise control
    (`familywise` across all the report's classes) and the tier's mean Δ is > 0. (c) needs a second dataset:
    `decision_across_datasets`.

    Args:
        rows (dict): Class -> `familywise` row (`delta`, `lo`, controlled `verdict`), every class of the report.
        train_instances (dict): Class -> train instances (the rare tier is chosen from these, before any run).
        margin (float): δ, the non-inferiority margin.
        share (float): Share of the classes in the rare tier.

    Returns:
        (dict): `a`, `b` (bool), `rare_tier` (list), `failing` (classes whose lower bound is below -margin) and
            `outcome`: 'passes the rule on this dataset ((c) needs a second dataset)' or which part fails and why.

    Examples:
        >>> rows = {"car": {"delta": -0.01, "lo": -0.015, "verdict": "not established"},
        ...         "tram": {"delta": 0.2, "lo": 0.08, "verdict": "better"},
        ...         "bus": {"delta": 0.05, "lo": -0.03, "verdict": "not established"}}
        >>> counts = {"car": 900, "tram": 5, "bus": 40}
        >>> decision_rule(rows, counts)["outcome"]
        'fails (a): bus lower bound -0.030 < -0.02'
        >>> rows["bus"]["lo"] = -0.01
        >>> decision_rule(rows, counts)["outcome"]
        'passes the rule on this dataset ((c) needs a second dataset)'
        >>> rows["tram"]["verdict"] = "not established"
        >>> decision_rule(rows, counts)["outcome"]
        'fails (b): no rare-tier class (tram) is better under family-wise control'
    """
    failing = {c: r["lo"] for c, r in rows.items() if not r["lo"] >= -margin}  # NaN fails
    tier = rare_tier({c: train_instances[c] for c in rows}, share)
    better = [c for c in tier if rows[c]["verdict"] == "better"]
    tier_delta = float(np.mean([rows[c]["delta"] for c in tier]))
    reasons = []
    if failing:
        worst = ", ".join(f"{c} lower bound {lo:+.3f}" for c, lo in failing.items())
        reasons.append(f"fails (a): {worst} < -{margin:g}")
    if not better:
        reasons.append(
            f"fails (b): no rare-tier class ({', '.join(map(str, tier))}) is better under family-wise control"
        )
    elif tier_delta <= 0:
        reasons.append(f"fails (b): the rare tier's mean Δ {tier_delta:+.3f} is not above 0")
    outcome = "; ".join(reasons) or "passes the rule on this dataset ((c) needs a second dataset)"
    return {"a": not failing, "b": bool(better) and tier_delta > 0, "rare_tier": tier, "failing": failing} | {
        "outcome": outcome
    }


def decision_across_datasets(outcomes: dict) -> str:
    """Return the rule's verdict for one setting over datasets: (c) it passes (a) and (b) on at least two of them.

    Args:
        outcomes (dict): Dataset name -> `decision_rule` result for the setting.

    Returns:
        (str): 'passes the rule' or why not.

    Examples:
        >>> ok = {"a": True, "b": True}
        >>> decision_across_datasets({"crops": ok, "lights": ok | {"b": False}})
        'fails (c): passes (a) and (b) on 1 dataset (crops); the rule needs 2'
        >>> decision_across_datasets({"crops": ok, "lights": ok})
        'passes the rule'
    """
    passed = [name for name, r in outcomes.items() if r["a"] and r["b"]]
    if len(passed) >= 2:
        return "passes the rule"
    listed = f"{len(passed)} dataset{'' if len(passed) == 1 else 's'}" + (f" ({', '.join(passed)})" if passed else "")
    return f"fails (c): passes (a) and (b) on {listed}; the rule needs 2"


TAU_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # the τ frontier's points (docs/decision-rule.md)


def tau_frontier(
    per_image: dict, nc: int, weights: np.ndarray, offsets: np.ndarray, train_instances: np.ndarray, taus=TAU_GRID
) -> dict:
    """Return balanced accuracy and prior-weighted accuracy of a balanced classifier corrected by each τ, no retraining.

    The correction adds τ times the class-logit offsets (at τ = 1: `priors.prior_offsets(share_before, share_trained,
    1)`) to the logits; on stored softmax probabilities that is argmax(log p + τ * offsets), since log-softmax differs
    from the logits by a constant per image.

    Args:
        per_image (dict): The run's classification `per_image.npz` (`true`, `probs`).
        nc (int): Number of classes.
        weights (np.ndarray): (B, n_images) weight of each evaluation image in each resample.
        offsets (np.ndarray): (nc,) class-logit offsets at τ = 1.
        train_instances (np.ndarray): (nc,) train instances per class (the prior of `prior_accuracy`).
        taus (tuple): The τ values.

    Returns:
        (dict): τ -> {'balanced_accuracy': (B,), 'prior_accuracy': (B,)}.

    Examples:
        >>> probs = np.array([[0.6, 0.4], [0.45, 0.55], [0.3, 0.7], [0.2, 0.8]])  # 2 head images, 2 tail images
        >>> out = tau_frontier({"true": np.array([0, 0, 1, 1]), "probs": probs}, 2, np.ones((1, 4)),
        ...                    np.log(np.array([0.9, 0.1]) / 0.5), np.array([90, 10]), taus=(0, 1))
        >>> [(t, float(x["balanced_accuracy"][0]), float(x["prior_accuracy"][0])) for t, x in out.items()]
        [(0, 0.75, 0.55), (1, 0.5, 0.9)]
    """
    logp = np.log(np.clip(np.asarray(per_image["probs"], float), 1e-12, None))
    out = {}
    for tau in taus:
        pred = np.argmax(logp + tau * np.asarray(offsets, float), 1)
        recall, _ = class_recall(per_image["true"], pred, nc, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any class
            balanced = np.nanmean(recall, 1)
        out[tau] = {"balanced_accuracy": balanced, "prior_accuracy": prior_accuracy(recall, train_instances)}
    return out
