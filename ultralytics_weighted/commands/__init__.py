# ultralytics-weighted, AGPL-3.0 license
"""The commands: `ultralytics-weighted stats | compare | demo | adjust | patch`, on top of everything else.

`cli.py` dispatches the command line and holds `stats`; `compare/` trains and validates variants side by side and
reports their paired statistics (its `__init__` lists its modules), `demo.py` runs a comparison on a made-up long-tail
dataset (`synthetic.py`, also the tests' dataset maker), `adjust.py` corrects a trained checkpoint's class prior, and
`patching.py` applies the upstream patch series to an Ultralytics checkout. Nothing below this folder imports it.
"""
