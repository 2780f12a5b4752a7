# ultralytics-weighted, AGPL-3.0 license
"""Startup hook: activate ultralytics-weighted once Ultralytics is imported, never before.

`ultralytics_weighted.pth` in site-packages runs `import ultralytics_weighted_hook` at every interpreter start. This
module only installs a tiny `sys.meta_path` finder (standard library only, no import of ultralytics, torch or numpy);
when a watched module finishes executing, the finder runs the callbacks registered for it. The first watched module
is `ultralytics`: its callback imports `ultralytics_weighted.integration` and patches the freshly loaded package.

That is how `yolo train class_balance=True`, `cfg=file.yaml` and Ultralytics' DDP worker scripts (fresh processes run
by `torch.distributed.run`) see the new keys without any user code. Set `ULTRALYTICS_WEIGHTED_HOOK=0` to switch the
startup hook off; `import ultralytics_weighted` still activates the plugin explicitly, and Ultralytics' error for
`class_balance` and the other keys then says that they come from this package.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "ULTRALYTICS_WEIGHTED_HOOK"
_callbacks: dict[str, list] = {}  # module name -> callables run with the module once it has been executed


def when_imported(name, callback):
    """Run `callback(module)` once module `name` has been imported, or now if it already has been.

    Args:
        name (str): Fully qualified module name, e.g. 'ultralytics.cfg'.
        callback (Callable[[ModuleType], None]): Function to call with the executed module.
    """
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        callback(module)
        return
    _callbacks.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


class _LoaderWithCallbacks:
    """Wrap a module loader so that the callbacks for that module run right after it executes."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)  # get_source, get_data, is_package, ... as the real loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        for callback in _callbacks.pop(module.__name__, ()):
            callback(module)


class _PostImportFinder:
    """Meta path finder that defers to the other finders and only wraps the loader of watched modules."""

    def find_spec(self, name, path=None, target=None):
        if name not in _callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderWithCallbacks(spec.loader)
                return spec
        return None


_FINDER = _PostImportFinder()


def _activate(module):
    """Activate the plugin for the Ultralytics package that has just been imported."""
    from ultralytics_weighted.integration import activate

    activate()


def _plugin_keys():
    """Return the train keys the plugin adds: `DEFAULT_CFG_YAML` of `ultralytics_weighted/config.py`, read with `ast`.

    Importing the package would activate the plugin, which is what the switched-off hook must not do. Only called once
    Ultralytics has raised its key error, so PyYAML (an Ultralytics dependency) is loaded already.
    """
    import ast
    import importlib.util
    from pathlib import Path

    import yaml

    spec = importlib.util.find_spec("ultralytics_weighted")  # finds the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return ()
    source = Path(list(spec.submodule_search_locations)[0], "config.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(getattr(target, "id", None) == "DEFAULT_CFG_YAML" for target in targets):
            return tuple(yaml.safe_load(ast.literal_eval(node.value)))  # parsed as config.py parses it for DEFAULTS
    return ()


def _name_the_plugin_in_key_errors(cfg):
    """Add to Ultralytics' "not a valid YOLO argument" error, for the plugin's keys, that its hook is switched off.

    The error stays Ultralytics' own SyntaxError, raised where Ultralytics raises it; only a line is added to it. Kept
    apart from integration.py's `_refuse_balance_keys` (unsupported releases) because importing integration.py would
    activate the plugin, which the switched-off hook must not do.
    """
    check_dict_alignment = cfg.check_dict_alignment
    if getattr(check_dict_alignment, "names_the_plugin", False):
        return  # installed already (the startup hook may run more than once)

    def check_dict_alignment_naming_the_plugin(base, custom, *args, **kwargs):
        try:
            return check_dict_alignment(base, custom, *args, **kwargs)
        except SyntaxError as error:
            if keys := [k for k in _plugin_keys() if k in custom and k not in base]:
                error.msg = (
                    f"{error.msg}{', '.join(repr(k) for k in keys)} "
                    f"{'is a key' if len(keys) == 1 else 'are keys'} of ultralytics-weighted, whose startup hook is "
                    f"switched off ({ENV_VAR}={os.environ.get(ENV_VAR)}): unset {ENV_VAR}, or `import "
                    "ultralytics_weighted` before Ultralytics reads the keys.\n"
                )
                error.args = (error.msg,)
            raise

    check_dict_alignment_naming_the_plugin.__doc__ = check_dict_alignment.__doc__
    check_dict_alignment_naming_the_plugin.names_the_plugin = True
    cfg.check_dict_alignment = check_dict_alignment_naming_the_plugin


def install():
    """Install the startup hook unless it is switched off with `ULTRALYTICS_WEIGHTED_HOOK=0`.

    Switched off, the hook only watches `ultralytics.cfg`, to say in Ultralytics' error for the plugin's keys that they
    come from this package.
    """
    if os.environ.get(ENV_VAR, "1").strip().lower() not in {"0", "false", "off", "no"}:
        when_imported("ultralytics", _activate)
    else:
        when_imported("ultralytics.cfg", _name_the_plugin_in_key_errors)
