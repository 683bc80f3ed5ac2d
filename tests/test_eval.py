"""eval.py: one ruler for every checkpoint: deterministic, the same tokens whichever trainer made the checkpoint,
the teacher's measures for teacher checkpoints, and one-line errors."""
import json

from conftest import run, user_error, write_tokens


def evaluate(ckpt, tmp_path, name, extra=()):
    path = tmp_path / f'{name}.json'
    p = run(['eval.py', f'--ckpt={ckpt}', '--n_seqs=8', f'--json={path}'] + list(extra))
    return json.loads(path.read_text()), p.stdout


def test_eval_is_deterministic_for_either_trainer(bptt_ckpt, tiny_ckpt, tmp_path):
    out, _ = bptt_ckpt
    a, text = evaluate(out / 'ckpt.pt', tmp_path, 'a')
    assert a['trainer'] == 'bptt' and a['backbone'] == 'gru' and a['L'] == 64  # 4x block_size=16
    assert a['teacher'] is None and a['rnn_encoder_seeded'] is None
    buckets = a['rnn']['by_position']
    assert buckets[0]['start'] == 0 and buckets[-1]['end'] == 64 and len(buckets) == 8
    assert 0 < a['rnn']['acc'] < 1 and 0 < a['rnn']['bits'] < 8 and a['baselines']['bigram'] > 0
    assert 'bits/token' in text
    # an SMT checkpoint, twice: the same numbers; the teacher and the encoder-seeded protocol too
    s1, _ = evaluate(f'{tiny_ckpt}/ckpt.pt', tmp_path, 's1')
    s2, _ = evaluate(f'{tiny_ckpt}/ckpt.pt', tmp_path, 's2')
    assert s1 == s2 and s1['trainer'] == 'smt' and s1['L'] == 64  # 4x context_len=16
    assert s1['teacher']['bits'] > 0 and s1['rnn_encoder_seeded']['start'] == 16
    assert set(s1) >= {'checkpoint', 'trainer', 'backbone', 'dataset', 'L', 'rnn', 'baselines', 'teacher',
                       'gap', 'rnn_encoder_seeded'}
    # the gap's 'alone' column is the RNN alone on the teacher's positions (every 8th), its buckets the RNN's
    gap, every = s1['gap'], s1['teacher']['every']
    assert every == 8 and len(gap['by_position']) == len(s1['rnn']['by_position'])
    assert gap['alone']['bits'] != s1['rnn']['bits'] and abs(gap['alone']['bits'] - s1['rnn']['bits']) < 1.0
    for b in gap['by_position']:
        assert b['teacher']['bits'] > 0
        assert all(0 <= b[k]['acc'] <= 1 for k in ('teacher', 'readout', 'one_step', 'alone'))
    assert a['gap'] is None
    assert s1['baselines'] == a['baselines']  # the same val tokens for every checkpoint at the same L


def test_eval_refuses_bad_input_in_one_line(bptt_ckpt, tmp_path):
    out, _ = bptt_ckpt
    other = write_tokens(tmp_path / 'other', list(range(200)) * 50, 200)
    assert 'vocabulary of 128' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', f'--dataset={other}'])
    assert 'longer than the validation data' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', '--L=100000'])
    assert 'not found' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', '--dataset=nope'])
    assert 'n_seqs' in user_error(['eval.py', f'--ckpt={out}/ckpt.pt', '--n_seqs=0'])
