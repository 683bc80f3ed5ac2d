"""
Checked configuration, nanoGPT style: a script's defaults are its module globals; then a config file, then
--key=value overrides. Unlike nanoGPT's exec-based version this rejects unknown keys and wrong types, so a typo
fails loudly instead of being ignored. An int is accepted for a float key (--learning_rate=1 means 1.0).
Only settings are keys: the script's bool/int/float/str globals, except names starting with '_' and ALL_CAPS
constants of two or more characters (LOG2E, ROOT, ...), which are never settings.

    python train_smt.py config/lm.py --batch_size=32 --compile=False

Values are then checked by check(config, rules): one table per script, {key: rule}, each rule a function of
(value, config) that returns None or 'what is wrong; the fix'. The first broken rule stops the script with one line
    error: <key>=<value>: <what is wrong>; <fix>
Rules: at_least, between, one_of, int_list, device_rule, dtype_rule, satisfies (any other condition),
raises_no_error (a check that raises ValueError).
"""
import ast
import difflib
import os
import re
import sys
import traceback

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


def is_setting(name, value):
    """A global that is a config key: a plain value, not private, not an ALL_CAPS constant (LOG2E, ROOT, ...)."""
    constant = len(name) > 1 and name.isupper()
    return not name.startswith('_') and not constant and type(value) in CONFIGURABLE


def load(g, argv):
    """Apply config files and --key=value args in argv to the globals dict g. Returns the resulting config dict."""
    defaults = {k: v for k, v in g.items() if is_setting(k, v)}
    for path in [a for a in argv if not a.startswith('--')]:
        if not os.path.isfile(path) and os.path.isfile(os.path.join(REPO, path)):
            path = os.path.join(REPO, path)  # config/x.py works from any working directory
        if not os.path.isfile(path):
            fail(f"config file '{path}' not found (config files live in config/, e.g. config/shakespeare_long.py)")
        print(f"config: {path}", file=sys.stderr)
        scope = {}
        try:
            with open(path) as f:
                exec(compile(f.read(), path, 'exec'), scope)
        except SyntaxError as e:
            fail(f"config file '{path}' line {e.lineno}: syntax error ({e.msg}); a config file is Python: key = value")
        except Exception as e:  # the file ran and raised
            line = next((t.lineno for t in reversed(traceback.extract_tb(e.__traceback__)) if t.filename == path), '?')
            first = str(e).splitlines()[0] if str(e) else ''
            fail(f"config file '{path}' line {line} raised {type(e).__name__}: {first}; fix the file (it is run as "
                 f"Python)")
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


def defaults_of(script):
    """A script's settings as its source states them: its top-level `name = literal` assignments before its load()
    call, i.e. what `python script` runs without a config file. load(defaults_of(s), argv) is then s's config."""
    with open(os.path.join(REPO, script)) as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and 'load' in ast.unparse(node.value.func):
            break
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return {k: v for k, v in found.items() if is_setting(k, v)}


# -----------------------------------------------------------------------------
# checking values: one table of rules per script, checked right after load()

def check(config, rules):
    """Check config against rules {key: rule or [rules]}, in the table's order; the first problem stops the script
    with one line naming the key, its value, what is wrong and the fix."""
    for key, rule in rules.items():
        for r in (rule if isinstance(rule, (list, tuple)) else [rule]):
            problem = r(config[key], config)
            if problem:
                fail(f"{key}={config[key]}: {problem}")


def satisfies(ok, what, fix):
    """A rule from any condition ok(value, config) -> bool; what/fix may use {v} (the value) and the other keys."""
    def rule(v, cfg):
        return None if ok(v, cfg) else f"{what}; {fix}".format(v=v, **cfg)
    return rule


def raises_no_error(check):
    """A rule from a check(value, config) that raises ValueError('what is wrong; the fix') where the value is bad (a
    constructor's own check, so that the rule and the code that builds cannot disagree)."""
    def rule(v, cfg):
        try:
            check(v, cfg)
        except ValueError as e:
            return str(e)
    return rule


def at_least(lo):
    return satisfies(lambda v, _: v >= lo, f"must be >= {lo}", f"use a value >= {lo}")


def between(lo, hi, hi_open=False):
    op = '<' if hi_open else '<='
    return satisfies(lambda v, _: lo <= v and (v < hi if hi_open else v <= hi),
                     f"must be in [{lo}, {hi}{')' if hi_open else ']'}", f"use {lo} <= value {op} {hi}")


def one_of(*choices):
    return satisfies(lambda v, _: v in choices, "not a valid choice", f"use one of {', '.join(map(str, choices))}")


def int_list(lo=1):
    """A comma-separated list of ints >= lo, e.g. '1,4,16'."""
    def ok(v, _):
        try:
            return all(int(s) >= lo for s in v.split(','))
        except ValueError:
            return False
    return satisfies(ok, f"must be comma-separated integers >= {lo}", "e.g. '1,4,16,64'")


device_rule = satisfies(lambda v, _: v in ('auto', 'cpu') or re.fullmatch(r'cuda(:\d+)?', v) is not None,
                        "not a device", "use auto, cpu, cuda or cuda:N")
dtype_rule = one_of('auto', 'float32', 'bfloat16', 'float16')
