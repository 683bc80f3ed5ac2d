"""The checked config loader: typos and wrong types fail with a clear message."""
import os

import pytest

import configurator


def defaults():
    return {'learning_rate': 3e-4, 'batch_size': 8, 'dataset': 'shakespeare', 'compile': 'auto', 'wandb_log': False}


def test_overrides_and_int_for_float(tmp_path):
    g = defaults()
    cfg_file = tmp_path / 'c.py'
    cfg_file.write_text("batch_size = 4\nimport math\n_private = 1\n")
    cfg = configurator.load(g, [str(cfg_file), '--learning_rate=1', '--dataset=tinystories', '--wandb_log=True'])
    assert cfg == {'learning_rate': 1.0, 'batch_size': 4, 'dataset': 'tinystories', 'compile': 'auto',
                   'wandb_log': True}
    assert type(g['learning_rate']) is float


def test_defaults_of_reads_a_scripts_settings_as_it_runs_them(tmp_path):
    """defaults_of gives the literal settings above a script's load() call, the same that load() itself collects:
    what the script runs with no config file."""
    for script in ('train_smt.py', 'train_bptt.py', 'train_dmt.py', 'eval.py', 'sample.py'):
        src = open(os.path.join(configurator.REPO, script)).read()
        head = src[:src.index('config = configurator.load(')]
        g = {}
        exec(compile(head, script, 'exec'), g)
        assert configurator.defaults_of(script) == {k: v for k, v in g.items() if configurator.is_setting(k, v)}
    f = tmp_path / 's.py'
    f.write_text("a = 1\nb = 'x'  # a comment\nc = [1]\n_d = 2\nCONST = 3\nconfig = configurator.load(globals(), [])\n"
                 "e = 5\n")
    assert configurator.defaults_of(str(f)) == {'a': 1, 'b': 'x'}


@pytest.mark.parametrize('argv, message', [
    (['--batch_sise=4'], "unknown config key 'batch_sise'"),
    (['--batch_size=0.5'], "'batch_size' (--batch_size=0.5) must be int"),
    (['--wandb_log=1'], "must be bool"),
    (['--batch_size'], "must look like --key=value"),
    (['config/nope.py'], "config file 'config/nope.py' not found"),
])
def test_errors(argv, message):
    with pytest.raises(SystemExit) as e:
        configurator.load(defaults(), argv)
    assert message in str(e.value)


def test_unknown_key_in_file(tmp_path):
    f = tmp_path / 'bad.py'
    f.write_text("learnin_rate = 1e-3\n")
    with pytest.raises(SystemExit) as e:
        configurator.load(defaults(), [str(f)])
    assert "unknown config key 'learnin_rate'" in str(e.value) and 'learning_rate' in str(e.value)


def test_constants_are_not_keys():
    g = {**defaults(), 'LOG2E': 1.4, 'ROOT': '/x', 'L': 0, '_private': 1}
    cfg = configurator.load(g, ['--L=3'])
    assert 'LOG2E' not in cfg and 'ROOT' not in cfg and cfg['L'] == 3  # one-letter L is a setting (eval.py --L)
    with pytest.raises(SystemExit, match="unknown config key 'LOG2E'"):
        configurator.load(g, ['--LOG2E=1.0'])


@pytest.mark.parametrize('text, message', [
    ("batch_size = (\n", "line 1: syntax error"),
    ("batch_size = 4\nbatch_size = 1 / 0\n", "line 2 raised ZeroDivisionError"),
])
def test_broken_config_file(tmp_path, text, message):
    f = tmp_path / 'broken.py'
    f.write_text(text)
    with pytest.raises(SystemExit) as e:
        configurator.load(defaults(), [str(f)])
    assert message in str(e.value) and str(e.value).count('\n') == 0


RULES = {'learning_rate': configurator.at_least(0.0), 'batch_size': configurator.between(1, 64),
         'compile': configurator.one_of('auto', 'True', 'False'),
         'dataset': configurator.satisfies(lambda v, c: v != c['compile'], "equals compile={compile}", "change it")}


@pytest.mark.parametrize('change, message', [
    ({'learning_rate': -1.0}, "error: learning_rate=-1.0: must be >= 0.0; use a value >= 0.0"),
    ({'batch_size': 65}, "error: batch_size=65: must be in [1, 64]; use 1 <= value <= 64"),
    ({'compile': 'maybe'}, "error: compile=maybe: not a valid choice; use one of auto, True, False"),
    ({'dataset': 'auto'}, "error: dataset=auto: equals compile=auto; change it"),
])
def test_check_rules(change, message):
    with pytest.raises(SystemExit) as e:
        configurator.check({**defaults(), **change}, RULES)
    assert str(e.value) == message
    configurator.check(defaults(), RULES)  # the defaults pass


def test_int_list_and_device_rules():
    assert configurator.int_list(1)('1,4,16', {}) is None
    assert configurator.int_list(1)('1,x', {}) and configurator.int_list(1)('0,4', {})
    assert configurator.device_rule('cuda:1', {}) is None and configurator.device_rule('gpu', {})
