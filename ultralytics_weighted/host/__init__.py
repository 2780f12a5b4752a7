# ultralytics-weighted, AGPL-3.0 license
"""The host: everything that touches Ultralytics, and the only place that does.

`release.py` decides whether the installed Ultralytics can be balanced (read without importing it), `surface.py`
declares every Ultralytics attribute the plugin replaces (`PATCH_SURFACE`) with the wrappers that replace them,
`activation.py` applies that table when Ultralytics is imported (`activate()`, called by the startup hook or
`ultralytics_weighted.activate()`), `training.py` wires the extensions into a trainer's train dataset and loader,
`labels.py` builds a split's labels the way training does (for `stats`, `compare`, `demo`), `user_weights.py` reads the
data YAML's weights, and `priors.py` records and corrects class priors in checkpoints. Host modules import the core and
the extensions, never the commands.
"""
