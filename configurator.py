"""
Checked configuration, nanoGPT style: a script's defaults are its module globals; then a config file, then
--key=value overrides. Unlike nanoGPT's exec-based version this rejects unknown keys and wrong types, so a typo
fails loudly instead of being ignored. Ints are accepted where the default is a float (--learning_rate=1).

    python train_smt.py config/lm.py --batch_size=32 --compile=False
"""
import ast
import difflib
import os
import sys

CONFIGURABLE = (bool, int, float, str)
REPO = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    sys.exit(f"error: {msg}")


def _checked(key, value, defaults, where):
    if key not in defaults:
        close = difflib.get_close_matches(key, defaults, n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else f"valid keys: {', '.join(sorted(defaults))}"
        fail(f"unknown config key '{key}' ({where}); {hint}")
    want = type(defaults[key])
    if want is float and type(value) is int:
        value = float(value)
    if type(value) is not want:
        fail(f"config key '{key}' ({where}) must be {want.__name__}, got {type(value).__name__} {value!r}")
    return value


def load(g, argv, default_config=None):
    """Apply config files and --key=value args in argv to the globals dict g. Returns the resulting config dict.
    default_config: the config file used when argv names none."""
    defaults = {k: v for k, v in g.items() if not k.startswith('_') and type(v) in CONFIGURABLE}
    files = [a for a in argv if not a.startswith('--')]
    if not files and default_config:
        files = [default_config]
    for path in files:
        if not os.path.isfile(path) and os.path.isfile(os.path.join(REPO, path)):
            path = os.path.join(REPO, path)  # config/x.py works from any working directory
        if not os.path.isfile(path):
            fail(f"config file '{path}' not found (config files live in config/, e.g. config/shakespeare.py)")
        print(f"config: {path}", file=sys.stderr)
        scope = {}
        with open(path) as f:
            exec(compile(f.read(), path, 'exec'), scope)
        for key, value in scope.items():
            if key.startswith('_') or type(value).__name__ == 'module':
                continue
            g[key] = _checked(key, value, defaults, path)
    for arg in argv:
        if not arg.startswith('--'):
            continue
        if '=' not in arg:
            fail(f"override '{arg}' must look like --key=value")
        key, raw = arg[2:].split('=', 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare word is a string: --dataset=shakespeare
        if key in defaults and type(defaults[key]) is str:
            value = raw  # a string key takes the text as written: --wandb_run_name=123
        g[key] = _checked(key, value, defaults, arg)
        print(f"override: {key} = {g[key]!r}", file=sys.stderr)
    return {k: g[k] for k in defaults}
