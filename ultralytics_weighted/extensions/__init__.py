# ultralytics-weighted, AGPL-3.0 license
"""The extensions: what the plugin adds on top of the core, in numpy alone (no Ultralytics, no torch).

`keys.py` declares the plugin's train keys and defaults (the one statement of them, which the startup hook, the host
and the patch series read), `config.py` checks their values and turns them into a schedule, `schedule.py` makes each
epoch's sampling probabilities (floor, ramp, start, data-YAML multipliers; `auto` through `auto.py`'s solver), `once.py`
computes an array once per training across DDP processes, and `report.py` puts a schedule into words, tables and a
figure. Each module imports only the core, the standard library and the numpy stack (numpy, threadpoolctl for the
solver's BLAS threads, matplotlib for the figure, PyYAML for the key declaration); importing one activates nothing.
"""
