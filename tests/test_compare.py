"""compare.py: trains each backbone x method under one time budget, scores each run with eval.py, and writes the
table and the JSON; the iteration count comes from eval.py's JSON."""
import json

import pytest

from conftest import TINY_BPTT, run, user_error

TINY_ARGS = ' '.join(a for a in TINY_BPTT if 'block' not in a and a.startswith('--'))
CONFIGS = ['--smt_config=tests/tiny_smt.py', '--bptt_config=tests/tiny_bptt.py', '--dmt_config=tests/tiny_dmt.py']


def test_compare_one_run(tiny_data, tmp_path):
    p = run(['compare.py', '--max_time=1', '--backbones=mingru', '--methods=bptt', f'--out_dir={tmp_path}',
             '--eval_seqs=4', '--eval_L=32', f"--args=--dataset={tiny_data} {TINY_ARGS}", '--device=cpu'] + CONFIGS)
    assert '[1/1] mingru-bptt' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | BPTT |') and 'failed' not in table, table
    (r,) = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert r['iters'] == r['eval']['iter_num'] >= 1 and f"{r['iters']} it)" in table
    assert r['eval']['L'] == 32 and r['eval']['trainer'] == 'bptt'


def test_compare_smt_cell_is_smt_then_dmt(tiny_data, tmp_path):
    """The SMT column is the recipe: SMT for 1 - dmt_frac of the budget, then DMT from its checkpoint; eval.py scores
    the DMT checkpoint."""
    from conftest import TINY
    smt_args = ' '.join(a for a in TINY if 'eval' not in a and 'log' not in a and a.startswith('--'))
    p = run(['compare.py', '--max_time=2', '--dmt_frac=0.5', '--backbones=transformer', '--methods=smt',
             f'--out_dir={tmp_path}', '--eval_seqs=4', '--eval_L=32', f"--args=--dataset={tiny_data} {smt_args}",
             '--dmt_args=--batch_size=4 --rollout_len=8 --eval_seqs=4 --eval_seq_len=32', '--device=cpu'] + CONFIGS)
    assert 'DMT for 1s' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | SMT -> DMT (50% / 50%) | teacher (SMT) | drift MSE at t (SMT) |'), table
    assert 'failed' not in table and '(t=' in table, table
    (r,) = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert r['eval']['trainer'] == 'dmt' and (tmp_path / 'transformer-smt' / 'dmt' / 'ckpt.pt').exists()
    assert r['smt_iters'] >= 1 and f"{r['smt_iters']} + {r['iters']} it)" in table


def test_compare_mistakes_give_one_line_errors(tmp_path):
    assert 'unknown backbone or method' in user_error(['compare.py', '--backbones=rwkv', f'--out_dir={tmp_path}'])
    assert 'max_time=0.0: must be > 0' in user_error(['compare.py', '--max_time=0', f'--out_dir={tmp_path}'])
    assert 'sweep must look like' in user_error(['compare.py', '--sweep=n_mem', f'--out_dir={tmp_path}'])
    # every value is checked before the first cell trains, eval.py's too
    for bad, message in (('--eval_seqs=0', 'eval_seqs=0: must be >= 1'),
                         ('--args=batch_size=4', 'args=batch_size=4: must be --key=value overrides'),
                         ('--smt_config=config/nope.py', 'smt_config=config/nope.py: no such file')):
        p = run(['compare.py', bad, f'--out_dir={tmp_path}'], check=False)
        assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].startswith(f'error: {message}'), p.stderr
        assert '[1/' not in p.stdout and 'Traceback' not in p.stderr
    (tmp_path / 'a_file').write_text('x')
    assert 'is a file, not a folder' in user_error(['compare.py', f'--out_dir={tmp_path / "a_file"}'])


def test_compare_exits_non_zero_when_a_cell_failed(tiny_data, tmp_path):
    """A failed cell is a row marked failed and the sweep goes on; at the end it exits non-zero, naming it."""
    msg = user_error(['compare.py', '--max_time=1', '--backbones=mingru', '--methods=bptt', f'--out_dir={tmp_path}',
                      '--eval_seqs=4', '--eval_L=32', f"--args=--dataset={tiny_data} {TINY_ARGS} --n_head=3",
                      '--device=cpu'] + CONFIGS)
    assert msg.startswith('error: 1 of 1 cells failed: mingru-bptt (error: d_model=32: must split into n_head=3'), msg
    assert f'their logs are in {tmp_path}/' in msg
    assert 'failed' in (tmp_path / 'table.md').read_text()


@pytest.mark.slow
def test_compare_writes_the_table(tiny_data, tmp_path):
    p = run(['compare.py', '--max_time=1', '--backbones=mlp,mingru', f'--out_dir={tmp_path}', '--eval_seqs=4',
             '--eval_L=32', f"--args=--dataset={tiny_data} {TINY_ARGS}",
             '--device=cpu'] + CONFIGS)
    assert '[4/4] mingru-bptt' in p.stdout
    table = (tmp_path / 'table.md').read_text()
    assert table.startswith('| backbone | SMT -> DMT (87.5% / 12.5%) | BPTT | teacher (SMT) |') and 'failed' not in table
    runs = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert len(runs) == 4 and all(r['eval']['L'] == 32 for r in runs)


def test_compare_task_runs_the_named_config(tmp_path):
    """--task uses the probe configs unless others are named: an SMT cell with smt_config runs that config (here the
    retrieval teacher's, whose keys differ from config/probe.py's), on the task's episodes, then DMT and eval.py."""
    tiny = '--n_mem=2 --d_model=32 --n_head=2 --n_enc_layer=1 --n_dec_layer=1 --eval_seqs=4 --log_interval=1'
    run(['compare.py', '--task=retrieval', '--lengths=8', '--backbones=gru', '--methods=smt', '--max_time=2',
         '--dmt_frac=0.5', '--smt_config=config/probe_retrieval.py', f'--out_dir={tmp_path}', '--eval_seqs=4',
         f'--args={tiny}', '--dmt_args=--batch_size=4 --eval_seqs=4', '--device=cpu'])
    log = (tmp_path / 'gru-smt-L=8' / 'train.log').read_text()
    assert log.startswith('config: config/probe_retrieval.py\n'), log[:200]
    assert 'synthetic:retrieval:8' in log and 'present' in log  # the task's episodes; w_present's term is logged
    (r,) = json.loads((tmp_path / 'results.json').read_text())['runs']
    assert r['eval']['trainer'] == 'dmt' and 0 <= r['eval']['rnn']['acc'] <= 1


def test_compare_curriculum_trains_short_episodes_first(tmp_path):
    """--curriculum=L0:frac: a cell first trains at length L0, then at its own length from those weights (the same
    code for both methods; train_smt.py's init_from=<path> is tested in test_init_from.py)."""
    tiny = '--n_mem=2 --d_model=32 --n_head=2 --n_dec_layer=1 --eval_seqs=4 --log_interval=1'
    run(['compare.py', '--task=retrieval', '--lengths=16', '--backbones=gru', '--methods=bptt', '--max_time=2',
         '--curriculum=8:0.5', f'--out_dir={tmp_path}', '--eval_seqs=4', f'--args={tiny}', '--device=cpu'])
    cell = tmp_path / 'gru-bptt-L=16'
    assert 'synthetic:retrieval:8' in (cell / 'train_L=8.log').read_text()
    log = (cell / 'train.log').read_text()
    assert f"starting from the weights of {cell / 'L=8' / 'ckpt.pt'}" in log and 'synthetic:retrieval:16' in log
    assert json.loads((tmp_path / 'results.json').read_text())['curriculum'] == '8:0.5'
    assert 'with a --task' in user_error(['compare.py', '--curriculum=64:0.25', f'--out_dir={tmp_path}'])
