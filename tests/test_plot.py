"""plot.py: eval.py results -> a PNG plot and a markdown table, as a function (compare.py) and as a script."""
import json
import os

from conftest import PNG_MAGIC, ROOT, run


def fake_results():
    out = []
    for trainer, acc in (('smt', [1.0, 0.98, 0.97]), ('bptt', [0.9, 0.6, 0.3])):
        for L, a in zip((64, 128, 256), acc):
            out.append({'trainer': trainer, 'backbone': 'gru', 'dataset': f'synthetic:copy:{L}', 'L': L,
                        'rnn': {'bits': 1 - a, 'acc': a}})
    return out


def test_plot_writes_a_png_and_a_table(tmp_path):
    from plot import plot_results
    table = plot_results(fake_results(), str(tmp_path / 'p.png'))
    assert (tmp_path / 'p.png').read_bytes().startswith(PNG_MAGIC)
    assert '| method | L=64 | L=128 | L=256 |' in table and '| bptt (gru) | 0.900 (0.100) | 0.600' in table
    # bits when accuracy is missing (text, pixels); a swept key found in the config
    rows = [dict(r, rnn={'bits': r['rnn']['bits'], 'acc': None}, config={'n_mem': r['L'] // 32}) for r in fake_results()]
    table = plot_results(rows, str(tmp_path / 'q.png'), x_key='n_mem')
    assert 'bits per target token' in table and 'n_mem=2' in table


def test_plot_script(tmp_path):
    path = tmp_path / 'r.jsonl'
    path.write_text('\n'.join(json.dumps(r) for r in fake_results()))
    p = run([os.path.join(ROOT, 'plot.py'), f'--results={path}'])
    assert (tmp_path / 'r.png').read_bytes().startswith(PNG_MAGIC) and '| smt (gru) |' in (tmp_path / 'r.md').read_text()
    assert 'smt (gru)' in p.stdout


def test_learning_curves_from_trainer_logs(tmp_path):
    """plot.py --curves: bits of the RNN alone against training seconds; a second phase's clock starts where the first
    ended (SMT then DMT on one axis)."""
    from plot import read_curve
    (tmp_path / 'smt.log').write_text("iter 10: loss 3\neval 100 (smt, 60.0 s): rnn 3.5000 bits/token (alone)\n"
                                      "eval 200 (smt, 120.5 s): rnn 3.1000 bits/token (alone)\n")
    (tmp_path / 'dmt.log').write_text("eval 0 (dmt, 0.0 s): rnn 3.1000 bits/token\neval 50 (dmt, 30.0 s): rnn 3.0 x\n")
    (tmp_path / 'bptt.log').write_text("eval 300 (bptt, 150.0 s): rnn 3.2000 bits/token (alone)\n")
    assert read_curve([tmp_path / 'smt.log', tmp_path / 'dmt.log']) == [(60.0, 3.5), (120.5, 3.1), (120.5, 3.1),
                                                                           (150.5, 3.0)]
    png = tmp_path / 'c.png'
    p = run([os.path.join(ROOT, 'plot.py'), f"--curves=SMT -> DMT={tmp_path / 'smt.log'}+{tmp_path / 'dmt.log'};"
             f"BPTT={tmp_path / 'bptt.log'}", f'--png={png}'])
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert '| SMT -> DMT | 150 | 3.0000 |' in p.stdout and '| BPTT | 150 | 3.2000 |' in p.stdout


def test_teacher_curve_from_smt_and_dmt_logs(tmp_path):
    """'label=teacher:log+log' reads the teacher's next-token bits from the same eval lines, not the RNN's, with the
    phases' clocks joined; a log without them is refused with a message, not a traceback."""
    from plot import read_curve
    (tmp_path / 'smt.log').write_text("eval 100 (smt, 60.0 s): rnn 3.5000 bits/token (alone), 3.4 (from the encoder's "
                                      "memory) | teacher next-token 3.2500 | val dec 1.9\n")
    (tmp_path / 'dmt.log').write_text("eval 0 (dmt, 0.0 s): rnn 3.4 bits | teacher next-token 3.2400 | unigram 4.8\n"
                                      "eval 9 (dmt, 20.0 s): rnn 3.3 bits | teacher next-token 3.2400 | unigram 4.8\n")
    (tmp_path / 'bptt.log').write_text("eval 300 (bptt, 150.0 s): rnn 3.2000 bits/token (alone)\n")
    logs = [tmp_path / 'smt.log', tmp_path / 'dmt.log']
    assert read_curve(logs, teacher=True) == [(60.0, 3.25), (60.0, 3.24), (80.0, 3.24)]
    assert read_curve(logs) == [(60.0, 3.5), (60.0, 3.4), (80.0, 3.3)]
    png = tmp_path / 'c.png'
    p = run([os.path.join(ROOT, 'plot.py'), f"--curves=SMT -> DMT={logs[0]}+{logs[1]};its teacher=teacher:{logs[0]}+"
             f"{logs[1]}", f'--png={png}'])
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert '| its teacher | 80 | 3.2400 |' in p.stdout and '| SMT -> DMT | 80 | 3.3000 |' in p.stdout
    p = run([os.path.join(ROOT, 'plot.py'), f"--curves=BPTT=teacher:{tmp_path / 'bptt.log'}", f'--png={png}'],
            check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and "teacher's next-token bits" in p.stderr


def test_bits_by_position(tmp_path):
    """plot.py --by_position: one line per eval.py result over its position buckets (rows of an image), the table a
    column per bucket in order."""
    for name, bits in (('smt', [3.0, 2.0, 1.5]), ('bptt', [2.5, 2.6, 2.7])):
        buckets = [{'start': 28 * i, 'end': 28 * (i + 1), 'bits': b, 'acc': None} for i, b in enumerate(bits)]
        (tmp_path / f'{name}.json').write_text(json.dumps({'rnn': {'bits': sum(bits) / 3, 'by_position': buckets}}))
    png = tmp_path / 'rows.png'
    p = run([os.path.join(ROOT, 'plot.py'), f"--by_position=SMT={tmp_path / 'smt.json'};BPTT={tmp_path / 'bptt.json'}",
             f'--png={png}'])
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert '| run | 0 | 28 | 56 |' in p.stdout and '| SMT | 3.00 | 2.00 | 1.50 |' in p.stdout
    assert '| BPTT | 2.50 | 2.60 | 2.70 |' in p.stdout
    # one eval.py call of several checkpoints writes a list: label=file@k picks the k-th
    both = [json.loads((tmp_path / f'{n}.json').read_text()) for n in ('smt', 'bptt')]
    (tmp_path / 'both.json').write_text(json.dumps(both))
    p = run([os.path.join(ROOT, 'plot.py'), f"--by_position=B={tmp_path / 'both.json'}@1;S={tmp_path / 'both.json'}",
             f'--png={png}'])
    assert '| B | 2.50 | 2.60 | 2.70 |' in p.stdout and '| S | 3.00 | 2.00 | 1.50 |' in p.stdout
    p = run([os.path.join(ROOT, 'plot.py'), f"--by_position=SMT={tmp_path / 'none.json'}", f'--png={png}'], check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and 'cannot plot by position' in p.stderr
