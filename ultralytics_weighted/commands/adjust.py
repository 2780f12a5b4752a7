# ultralytics-weighted, AGPL-3.0 license
"""`ultralytics-weighted adjust model=PATH tau=T [save=PATH] [exist_ok=True]`: restore the class prior of the data.

Balanced sampling teaches a model the balanced class prior; the data it meets keeps its natural one. Adding
delta_c = tau * log(share before_c / share trained_c) to each class logit trades that prior back (logit adjustment,
Menon et al. 2021): tau = 0 keeps the balanced model (rare classes first), tau = 1 restores the data's prior (overall
accuracy first). The share trained is the realized one (the instances in the batches trained, recorded since the
plugin counts them), else the nominal one (the sampler's expected share), as the output says. The offsets go into the
bias of the head's class-logit layers (`priors.class_logit_layers`), so the corrected checkpoint predicts, validates and
exports with stock Ultralytics.
"""

from __future__ import annotations

import sys

ADJUST_KEYS = ("model", "tau", "save", "exist_ok")


def main(options: dict[str, str]) -> int:
    """Write a copy of a balanced checkpoint with its class prior corrected by tau, and print the offsets.

    Args:
        options (dict[str, str]): `model` (required), `tau` (required), `save` (optional; default next to the model,
            e.g. best.pt -> best-tau1.pt) and `exist_ok` (optional, default False: an existing `save` file is kept).

    Returns:
        (int): Exit code: 0, or 2 with a one-line message on stderr (unknown key, bad tau, missing file, a folder, a
            file that is no PyTorch checkpoint, an existing save file without exist_ok=True, a model trained without
            balancing, a head without a per-class bias).
    """
    try:
        from ultralytics_weighted.extensions.config import check_correction_paths, check_keys, check_tau

        check_keys(options, set(ADJUST_KEYS), "adjust")
        if "model" not in options or "tau" not in options:
            raise ValueError("model=PATH and tau=T are required (see `ultralytics-weighted adjust --help`).")
        tau = check_tau(options["tau"])
        exist_ok = str(options.get("exist_ok", False)).strip().lower()
        if exist_ok not in ("true", "false"):
            raise ValueError(f"exist_ok={options['exist_ok']} must be True or False.")
        save = options.get("save") or None
        check_correction_paths(options["model"], tau, save, exist_ok == "true")  # refusals before torch is imported
        from ultralytics_weighted.host.priors import correct_checkpoint, share_used

        path, offsets, priors = correct_checkpoint(options["model"], tau, save, exist_ok=exist_ok == "true")
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"ultralytics-weighted adjust: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    width = max(len("class"), *(len(name) for name in priors["names"]))
    epochs, earlier = priors["epochs"], priors["tau"] - tau
    before = f", corrected by tau={earlier:g} before" if earlier else ""
    trained = f"{priors['settings']}, {epochs} epoch{'s' * (epochs != 1)}{before}"
    print(f"{options['model']} ({trained}), tau={tau:g}: class logit offsets from the {share_used(priors)}")
    realized = priors.get("share_realized") or [None] * len(priors["names"])
    print(f"{'class':>{width}} {'share before':>13} {'nominal':>8} {'realized':>9} {'offset':>8}")
    for name, before, nominal, seen, offset in zip(
        priors["names"], priors["share_before"], priors["share_trained"], realized, offsets
    ):
        seen = "-" if seen is None else f"{seen:.1%}"
        print(f"{name:>{width}} {before:>13.1%} {nominal:>8.1%} {seen:>9} {offset:>+8.3f}")
    print(f"saved {path} (tau {priors['tau']:g} in total)")
    return 0
