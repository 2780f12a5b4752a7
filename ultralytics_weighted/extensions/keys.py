# ultralytics-weighted, AGPL-3.0 license
"""The plugin's train keys and their defaults: a declaration that imports nothing of the package.

The startup hook reads it to name the plugin in Ultralytics' error for these keys, the host adds them to Ultralytics'
default configuration, `config.py` checks their values, and `tools/make_patches.py` writes the core's lines of
`default.yaml` from it. Importing it imports PyYAML alone.
"""

from __future__ import annotations

import yaml

# The keys as they read in Ultralytics' cfg/default.yaml (train settings), with comments in its style: the one statement
# of the keys and their defaults, which DEFAULTS is parsed from
DEFAULT_CFG_YAML = """\
class_balance: False # (bool | float) class-balanced train sampling; True=1.0 inverse frequency, 0.5 square root, 0 off
balance_agg: mean # (str) how an image's objects combine class weights, i.e. mean, max, median, sum, auto, rfs (LVIS)
balance_floor: 0.0 # (float) least expected draws of each train image per epoch when balancing; 1 = skip none
balance_ramp: 0.0 # (float) fraction of epochs over which class_balance rises linearly from 0; 0 = balanced at once
balance_start: 0.0 # (float) fraction of epochs trained with stock sampling before balancing starts, in [0, 1)
balance_rfs_threshold: 0.001 # (float) balance_agg=rfs: LVIS threshold t, repeat images of classes in < t of images
balance_tau: 0.0 # (float) also save best.pt with the data's class prior restored, tau * log(share before / trained)
ultralytics_weighted: True # (bool) set by the ultralytics-weighted plugin: its checkpoints need it to resume
"""
DEFAULTS = yaml.safe_load(DEFAULT_CFG_YAML)  # the keys and defaults as Ultralytics reads them from default.yaml
CORE_KEYS = ("class_balance", "balance_agg")  # the keys of the upstream core (its default.yaml lines are these ones)
AFTER_KEY = "fraction"  # the keys are listed right after this train setting
# In every run's arguments, so in its checkpoints' train_args: resumed where the plugin is not installed, Ultralytics'
# own error for the unknown keys then names the package (its message names keys only). Not a setting: always True.
MARKER_KEY = "ultralytics_weighted"
BALANCING_KEYS = tuple(k for k in DEFAULTS if k != MARKER_KEY)  # the keys a user sets
DATA_YAML_KEYS = ("class_weights", "source_weights", "image_weights")  # weights read from the data YAML, not train keys
