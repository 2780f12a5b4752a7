# ultralytics-weighted, AGPL-3.0 license
"""The core: exactly the modules the upstream patch series ships, byte for byte, as `ultralytics/data/<name>.py`.

`balance.py` turns label classes into image probabilities (numpy only), `sampler.py` draws each epoch from them
(`BalancedSampler`), and `balanced_training.py` is the trainer wiring Ultralytics' trainers call. Nothing here imports
the rest of the package; the plugin's extensions, host wiring and commands build on these three modules.
"""
