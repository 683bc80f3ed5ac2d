"""
Turn eval.py --json results into a figure and a markdown table: accuracy (or bits) against the swept value, one
line per method (trainer and backbone). compare.py calls plot_results; it also runs alone:

    python plot.py --results=out-compare/results.json --png=out-compare/plot.png
    python plot.py --results=results.jsonl --x_key=L --metric=bits

Learning curves from the trainers' logs (their eval lines carry the training seconds so far): bits/token of the RNN
alone against training seconds, one line per run; a run of several phases (SMT, then DMT) joins its logs with '+',
each phase's clock starting where the last one ended:

    python plot.py --curves="SMT -> DMT=smt.log+dmt.log;BPTT=bptt.log" --png=curves.png
    python plot.py --curves="SMT -> DMT=smt.log+dmt.log;its teacher=teacher:smt.log+dmt.log" --png=ceiling.png

Bits by position from eval.py --json results (its position buckets; for 28x28 images at L=784 with --n_buckets=28
they are rows), one line per run:

    python plot.py --by_position="SMT -> DMT=smt.json;BPTT=bptt.json" --png=rows.png

A result is a dict with at least "trainer", "backbone", "dataset" and "rnn": {"bits", "acc", ...}, plus the swept
key (default "L"; looked up at the top level, then in "rnn", then in "config"). acc is null on data without targets
marked for accuracy; metric='auto' plots accuracy when every result has it, else bits.
"""
import json
import os
import re
import sys

import configurator

METRICS = {'acc': 'accuracy on the targets', 'bits': 'bits per target token'}


def lookup(result, key):
    for where in (result, result.get('rnn', {}), result.get('config', {})):
        if isinstance(where, dict) and key in where:
            return where[key]
    return None


def method(result):
    return f"{result.get('trainer', '?')} ({result.get('backbone', '?')})"


def sort_key(v):
    return (0, v, '') if isinstance(v, (int, float)) else (1, 0, str(v))


def plot_results(results, png, x_key='L', metric='auto', title=None):
    """Write the plot to png and return the markdown table (the chosen metric, bits in brackets next to accuracy).
    Methods are lines in the order they first appear; missing points are left out (a run that did not finish)."""
    if not results:
        raise ValueError("no results to plot")
    if metric == 'auto':
        metric = 'acc' if all(lookup(r, 'acc') is not None for r in results) else 'bits'
    if metric not in METRICS:
        raise ValueError(f"metric must be 'auto', 'acc' or 'bits', got {metric!r}")
    table = {}  # method -> {x: result}
    for r in results:
        table.setdefault(method(r), {})[lookup(r, x_key)] = r
    xs = sorted({x for runs in table.values() for x in runs}, key=sort_key)
    numeric = all(isinstance(x, (int, float)) for x in xs)

    import matplotlib
    matplotlib.use('Agg')  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, runs in table.items():
        pts = [(x if numeric else xs.index(x), lookup(runs[x], metric)) for x in xs if x in runs]
        pts = [(x, y) for x, y in pts if y is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', label=name)
    if numeric and len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 4:
        ax.set_xscale('log', base=2)  # lengths double along a sweep
    ax.set_xticks(xs if numeric else range(len(xs)))
    ax.set_xticklabels([str(x) for x in xs])
    ax.set_xlabel(x_key)
    ax.set_ylabel(METRICS[metric])
    if metric == 'acc':
        ax.set_ylim(-0.02, 1.02)
    datasets = sorted({str(r.get('dataset', '?')) for r in results})
    # a sweep over synthetic:copy:64 .. :512 is titled synthetic:copy:*
    title = title or (datasets[0] if len(datasets) == 1 else (os.path.commonprefix(datasets) or 'datasets ') + '*')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(png) or '.', exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)

    def cell(r):
        if r is None:
            return '-'
        bits, acc = lookup(r, 'bits'), lookup(r, 'acc')
        if metric == 'acc':
            return f"{acc:.3f}" + (f" ({bits:.3f})" if bits is not None else '')
        return f"{bits:.3f}" if bits is not None else '-'
    head = METRICS[metric] + (' (bits per target token in brackets)' if metric == 'acc' else '')
    lines = [f"{head}; {title}", '',
             f"| method | {' | '.join(f'{x_key}={x}' for x in xs)} |", '|---' * (len(xs) + 1) + '|']
    for name, runs in table.items():
        lines.append(f"| {name} | {' | '.join(cell(runs.get(x)) for x in xs)} |")
    return '\n'.join(lines) + '\n'


EVAL_LINE = re.compile(r'^eval (\d+) \((\w+), ([\d.]+) s\): rnn ([\d.]+)(.*)$', re.M)
TEACHER = re.compile(r'teacher next-token ([\d.]+)')


def read_curve(log_paths, teacher=False):
    """[(training seconds, bits/token of the RNN alone)] from trainer logs read in order, one phase after another;
    teacher=True: the teacher's next-token bits from the same eval lines instead (SMT and DMT logs print them)."""
    points, offset = [], 0.0
    for path in log_paths:
        with open(path) as f:
            evals = [(m.group(3), m.group(4), TEACHER.search(m.group(5))) for m in EVAL_LINE.finditer(f.read())]
        phase = [(offset + float(t), float(t_bits.group(1) if teacher else rnn_bits))
                 for t, rnn_bits, t_bits in evals if t_bits or not teacher]
        if not phase:
            raise ValueError(f"{path} has no eval lines with training seconds"
                             + (" and the teacher's next-token bits" if teacher else ''))
        points += phase
        offset = phase[-1][0]
    return points


def plot_lines(series, xlabel, png, title=None, marker='o', title_size=None, dashed=()):
    """series: {label: (xs, ys)} -> a PNG of bits/token, one line per label (those in `dashed` dashed: teachers)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker=marker, label=label, linestyle='--' if label in dashed else '-')
    ax.set_xlabel(xlabel)
    ax.set_ylabel('bits/token' + ('' if dashed else ', RNN alone from its initial memory'))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=title_size)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def plot_curves(curves, png, title=None, teachers=()):
    """curves: {label: [(seconds, bits)]} -> a PNG of bits/token against training seconds (the labels in `teachers`
    dashed), and a markdown table of each curve's last point."""
    plot_lines({label: ([p[0] for p in pts], [p[1] for p in pts]) for label, pts in curves.items()},
               'training seconds (evaluations excluded)', png, title, dashed=teachers)
    lines = [f"| run | training seconds | bits/token ({'RNN alone; dashed: a teacher' if teachers else 'RNN alone'}) |",
             '|---|---|---|']
    lines += [f"| {label} | {pts[-1][0]:.0f} | {pts[-1][1]:.4f} |" for label, pts in curves.items()]
    return '\n'.join(lines) + '\n'


def plot_by_position(runs, png, title=None):
    """runs: {label: eval.py result} -> a PNG of the RNN's bits/token in each position bucket against the bucket's
    first position, and a markdown table (a column per bucket)."""
    buckets = {label: r['rnn']['by_position'] for label, r in runs.items()}
    plot_lines({label: ([b['start'] for b in bs], [b['bits'] for b in bs]) for label, bs in buckets.items()},
               'position (first token of the bucket)', png, title, marker='.', title_size=9)
    starts = [b['start'] for b in next(iter(buckets.values()))]
    lines = ['| run | ' + ' | '.join(str(a) for a in starts) + ' |', '|---' * (len(starts) + 1) + '|']
    lines += [f"| {label} | " + ' | '.join(f"{b['bits']:.2f}" for b in bs) + ' |' for label, bs in buckets.items()]
    return '\n'.join(lines) + '\n'


def read_results(path):
    """A JSON list of results, or JSON lines (one result per line)."""
    with open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


if __name__ == '__main__':
    results = ''  # a JSON list of eval.py --json results, or JSON lines
    png = ''  # default: next to results, .png
    md = ''  # default: next to results, .md
    x_key = 'L'
    metric = 'auto'  # 'auto', 'acc' or 'bits'
    title = ''
    curves = ''  # 'label=log[+log...];label=log...': learning curves from trainer logs (then --png is required);
    # 'label=teacher:log[+log...]': the teacher's next-token bits from SMT/DMT logs instead of the RNN's, dashed
    by_position = ''  # 'label=eval.json;...': bits by position bucket of one eval.py result each (--png required);
    # 'label=eval.json@k': the k-th of an eval.py call's results (several checkpoints, one set of tokens)
    configurator.load(globals(), sys.argv[1:])
    if by_position:
        if not png:
            configurator.fail("name the figure: python plot.py --by_position=... --png=PATH")
        try:
            def result(path):  # eval.json, or eval.json@k: the k-th checkpoint of an eval.py call of several
                head, _, k = path.rpartition('@')
                return read_results(head)[int(k)] if head and k.isdigit() else read_results(path)[0]
            runs = {label: result(path) for label, path in
                    (item.split('=', 1) for item in by_position.split(';') if item.strip())}
            print(plot_by_position(runs, png, title or None) + f"wrote {png}")
        except (OSError, ValueError, KeyError, IndexError) as e:
            configurator.fail(f"cannot plot by position: {e}")
        sys.exit(0)
    if curves:
        if not png:
            configurator.fail("name the figure: python plot.py --curves=... --png=PATH")
        try:
            items = [item.split('=', 1) for item in curves.split(';') if item.strip()]
            teachers = {label for label, logs in items if logs.startswith('teacher:')}
            runs = {label: read_curve(logs.removeprefix('teacher:').split('+'), label in teachers)
                    for label, logs in items}
            print(plot_curves(runs, png, title or None, teachers) + f"wrote {png}")
        except (OSError, ValueError) as e:
            configurator.fail(f"cannot plot the curves: {e}")
        sys.exit(0)
    if not results:
        configurator.fail("name the results: python plot.py --results=PATH (a JSON list or JSON lines)")
    if not os.path.isfile(results):
        configurator.fail(f"no results file at {results}")
    try:
        rows = read_results(results)
    except json.JSONDecodeError as e:
        configurator.fail(f"{results} is neither a JSON list nor JSON lines ({e})")
    stem = os.path.splitext(results)[0]
    try:
        table_md = plot_results(rows, png or stem + '.png', x_key, metric, title or None)
    except (ValueError, TypeError) as e:
        configurator.fail(f"cannot plot {results}: {e}")
    with open(md or stem + '.md', 'w') as f:
        f.write(table_md)
    print(table_md)
    print(f"wrote {png or stem + '.png'} and {md or stem + '.md'}")
