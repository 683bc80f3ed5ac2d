"""The checked config loader: typos and wrong types fail with a clear message."""
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


def test_default_config_used_only_without_a_file(tmp_path):
    f = tmp_path / 'd.py'
    f.write_text("batch_size = 2\n")
    assert configurator.load(defaults(), ['--dataset=x'], default_config=str(f))['batch_size'] == 2
    assert configurator.load(defaults(), [str(f), '--batch_size=5'], default_config='missing.py')['batch_size'] == 5


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
