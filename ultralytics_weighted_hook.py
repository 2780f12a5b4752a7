# ultralytics-weighted, AGPL-3.0 license
"""Startup hook: activate ultralytics-weighted once Ultralytics is imported, never before, and never harm Ultralytics.

`ultralytics_weighted.pth` in site-packages runs `import ultralytics_weighted_hook` at every interpreter start. This
module only installs a tiny `sys.meta_path` finder (standard library only, no import of ultralytics, torch or numpy);
when a watched module finishes executing, the finder runs the callbacks registered for it. The first watched module
is `ultralytics`: its callback runs `ultralytics_weighted.host.activation.activate()` on the freshly loaded package.

That is how `yolo train class_balance=True`, `cfg=file.yaml` and Ultralytics' DDP worker scripts (fresh processes run
by `torch.distributed.run`) see the new keys without any user code. Set `ULTRALYTICS_WEIGHTED_HOOK=0` to switch the
startup hook off; `import ultralytics_weighted` still activates the plugin explicitly, and Ultralytics' error for
`class_balance` and the other keys then says that they come from this package.

If activating fails (a dependency missing or broken, a bug of ours), `import ultralytics` and every stock command work
as without the plugin, and a balancing key fails with one message naming ultralytics-weighted and the cause.
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


_armed = False  # the plugin activates once `ultralytics` is imported (registered at most once)
_reading_keys = False  # the hook is importing the key declaration, which must not arm the plugin
_failure: str | None = None  # why activating failed in this process, or None


class PluginUnavailableError(RuntimeError):
    """A balancing key was used although ultralytics-weighted failed to start in this process."""


def activate_with_ultralytics():
    """Activate the plugin once `ultralytics` is imported, at once if it is (what `import ultralytics_weighted` does).

    Idempotent; does nothing while the hook itself imports the key declaration (`_plugin_keys`), so that naming the
    plugin in an error never activates a plugin the user switched off.
    """
    global _armed
    if not (_armed or _reading_keys):
        _armed = True
        when_imported("ultralytics", _activate)


def _activate(module):
    """Activate the plugin for the Ultralytics package that has just been imported; a failure must not break it."""
    global _failure
    try:
        from ultralytics_weighted.host.activation import activate

        activate()
    except Exception as error:  # e.g. a dependency missing: Ultralytics works as without us, our keys name the cause
        _failure = _cause(error)
        when_imported("ultralytics.cfg", _name_the_plugin_in_key_errors)


def _cause(error: BaseException) -> str:
    """Return what went wrong while activating, for a user: the module that is missing or broken, or where it failed."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    ours = {"ultralytics_weighted", __name__}
    foreign = [
        f.f_globals.get("__name__", "")
        for f in frames
        if not f.f_code.co_filename.startswith("<") and f.f_globals.get("__name__", "").split(".")[0] not in ours
    ]
    what = f"{type(error).__name__}: {error}"
    if isinstance(error, ModuleNotFoundError) and error.name:
        return f"{error.name.split('.')[0]} is missing ({what}): pip install ultralytics-weighted again"
    if isinstance(error, ImportError) and (foreign or error.name):
        broken = (foreign[0] if foreign else error.name).split(".")[0]
        return f"{broken} cannot be imported ({what}): pip install --force-reinstall {broken}"
    where = frames[-1].f_code.co_filename + f":{frames[-1].f_lineno}" if frames else "?"
    return f"{what} (in {where}); please report it"


def _plugin_keys():
    """Return the train keys the plugin adds (`ultralytics_weighted.extensions.keys`), or () if they cannot be read.

    The key declaration imports PyYAML alone, and the package's `__init__` does not arm the plugin while this reads it.
    Only called once Ultralytics has raised its key error.
    """
    global _reading_keys
    _reading_keys = True
    try:
        from ultralytics_weighted.extensions.keys import DEFAULTS

        return tuple(DEFAULTS)
    except Exception:
        return ()
    finally:
        _reading_keys = False


def _name_the_plugin_in_key_errors(cfg):
    """Say in Ultralytics' key check, for the plugin's keys, that the plugin is switched off or failed to start.

    Switched off, the error stays Ultralytics' own SyntaxError, raised where Ultralytics raises it; only a line is added
    to it. Failed, a balancing key is refused before Ultralytics' check with one message naming the cause. Kept apart
    from `host/surface.py`'s `_refuse_balance_keys` (unsupported releases) because the host is what may have failed.
    """
    check_dict_alignment = cfg.check_dict_alignment
    if getattr(check_dict_alignment, "names_the_plugin", False):
        return  # installed already (the startup hook may run more than once)

    def check_dict_alignment_naming_the_plugin(base, custom, *args, **kwargs):
        unknown = [k for k in custom if k not in base] if hasattr(custom, "keys") else []
        keys = [k for k in _plugin_keys() if k in unknown] if unknown else []
        named = f"{', '.join(map(repr, keys))} {'is a key' if len(keys) == 1 else 'are keys'} of ultralytics-weighted"
        if keys and _failure:
            raise PluginUnavailableError(
                f"{named}, which failed to start in this process: {_failure}. Everything else in Ultralytics works as "
                "without ultralytics-weighted."
            )
        try:
            return check_dict_alignment(base, custom, *args, **kwargs)
        except SyntaxError as error:
            if keys:
                error.msg += (
                    f"{named}, whose startup hook is switched off ({ENV_VAR}={os.environ.get(ENV_VAR)}): unset "
                    f"{ENV_VAR}, or `import ultralytics_weighted` before Ultralytics reads the keys.\n"
                )
            elif _failure:  # the plugin's keys could not be read: say what failed, the key may be one of them
                error.msg += f"ultralytics-weighted failed to start in this process: {_failure}.\n"
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
        activate_with_ultralytics()
    else:
        when_imported("ultralytics.cfg", _name_the_plugin_in_key_errors)
