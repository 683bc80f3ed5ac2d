"""
The comparison table: every backbone x method (SMT, BPTT) trained under the same wall-clock budget on the same data,
each checkpoint judged by the same ruler (eval.py on the same held-out sequences), written as a markdown table and a
JSON file. Optionally sweeps one config key over values, passed to every run (a row per value and backbone).

    OMP_NUM_THREADS=1 python compare.py --max_time=480 --eval_L=1024   # the recipe against BPTT, 8 min a cell
    python compare.py --max_time=5 --backbones=gru,mingru            # a smoke test
    python compare.py --sweep=n_mem:2,4,8 --max_time=300             # one key over values
    python compare.py --sweep=context_len/block_size:64,128          # a key named differently in SMT / BPTT
    python compare.py --args="--batch_size=16 --device=cpu"          # extra overrides for every trainer run
    python compare.py --task=retrieval --lengths=64,128,256,512 --backbones=gru   # a synthetic probe over lengths
    python compare.py --task=retrieval --backbones=gru --methods=smt --smt_config=config/probe_retrieval.py
    python compare.py --task=retrieval --lengths=256 --curriculum=64:0.25   # a quarter of each cell at L=64 first

Each run trains from scratch and evaluates and saves when max_time seconds of training are spent (evaluations
excluded); its cosine schedule is keyed to that budget, so every run anneals. The SMT cell is the recipe, SMT then DMT:
SMT for (1 - dmt_frac) of the budget, then train_dmt.py from its checkpoint for dmt_frac of it. The BPTT cell is the
BPTT of bptt_args (stateful truncated BPTT on a stream, whole episodes on a probe). The cell reports eval.py's
bits/token and the wall time; the SMT cell also its teacher's CE and the drift of its RNN's own rollout.
Logs, checkpoints and eval JSON of each run stay in out_dir/<backbone>-<method>[-<key>=<value>]/ (DMT's in dmt/).
Every value is checked before the first cell trains; a cell that fails is a row marked failed, the others go on,
and the sweep then exits non-zero naming the failed cells.
"""
import json
import os
import re
import subprocess
import sys
import time

import configurator
from checkpoint import check_writable
from configurator import at_least, between, int_list, satisfies
from model import BACKBONES

out_dir = 'out-compare'
backbones = ','.join(BACKBONES)
methods = 'smt,bptt'
max_time = 600.0  # seconds of training per cell (the trainers' max_time; an SMT cell splits it with DMT)
dmt_frac = 0.125  # share of an SMT cell's budget that DMT gets after SMT (0: SMT alone)
bptt_args = 'auto'  # the BPTT cell's overrides; 'auto': --stateful=True on a stream (pasts longer than a window), none
# on a probe (an episode is trained whole)
dmt_args = ''  # extra --key=value overrides for the DMT runs (the model and data come from the SMT checkpoint)
sweep = ''  # 'key:v1,v2,...' -> one run per value with --key=value for every trainer; 'smt_key/bptt_key:...'
smt_config = ''  # each trainer's config file ('': its own defaults, the CPU recipe and its BPTT baseline)
bptt_config = ''
dmt_config = ''
args = ''  # extra --key=value overrides for every trainer run, separated by spaces
task = ''  # a synthetic probe (data/synthetic): sweep its episode length over `lengths`, report accuracy, plot
lengths = '64,128,256,512'
curriculum = ''  # a probe: 'L0:frac', each cell first trains at episode length L0 for frac of its training time (an
# SMT cell: of its SMT share), then at its own length from those weights (init_from); both methods alike
eval_L = 256  # one L for every checkpoint: the same ruler (4x the Shakespeare configs' training window of 64)
eval_seqs = 64
eval_args = ''  # extra --key=value overrides for eval.py, e.g. '--n_buckets=28' (by row, for 28x28 images at L=784)
device = 'auto'
progress_every = 60  # seconds between progress lines of a running trainer
config = configurator.load(globals(), sys.argv[1:])
CONFIG_FILE = satisfies(lambda v, _: v == '' or os.path.isfile(os.path.join(configurator.REPO, v)), "no such file",
                        "name a config file, e.g. one in config/, or '' for the trainer's defaults")
OVERRIDES = satisfies(lambda v, _: all(a.startswith('--') and '=' in a for a in v.split()),
                      "must be --key=value overrides separated by spaces", "e.g. '--batch_size=16 --device=cpu'")
configurator.check(config, {  # every value, before the first cell trains: a typo must not cost a cell's time
    'max_time': satisfies(lambda v, _: v > 0, "must be > 0 seconds (the budget every run gets)", "e.g. 60"),
    'dmt_frac': between(0.0, 1.0, hi_open=True), 'eval_L': at_least(0), 'eval_seqs': at_least(1),
    'progress_every': satisfies(lambda v, _: v > 0, "must be > 0 seconds", "e.g. 60"),
    'lengths': int_list(2), 'args': OVERRIDES, 'dmt_args': OVERRIDES, 'eval_args': OVERRIDES,
    'bptt_args': satisfies(lambda v, c: v == 'auto' or OVERRIDES(v, c) is None, "must be auto or --key=value overrides",
                           "e.g. '--stateful=True'"),
    'smt_config': CONFIG_FILE, 'bptt_config': CONFIG_FILE, 'dmt_config': CONFIG_FILE,
    'curriculum': satisfies(lambda v, c: v == '' or (c['task'] != '' and re.fullmatch(r'\d+:0?\.\d+', v) is not None
                                                     and int(v.split(':')[0]) >= 2 and 0 < float(v.split(':')[1]) < 1),
                            "must be L0:frac with a --task (L0 >= 2 tokens, 0 < frac < 1)", "e.g. --curriculum=64:0.25"),
})
curriculum_L, curriculum_frac = (int(curriculum.split(':')[0]), float(curriculum.split(':')[1])) if curriculum else (0, 0)

if task:  # the probe sweep: dataset synthetic:<task>:<L>, and the teacher sees the whole episode (Tc = L)
    if sweep:
        configurator.fail("--task sweeps the episode length itself; leave --sweep out")
    sweep = 'L:' + lengths
    # the probe configs unless others are named (config/probe_retrieval.py: the teacher that finds the needle)
    smt_config, bptt_config = smt_config or 'config/probe.py', bptt_config or 'config/probe_bptt.py'
    dmt_config = dmt_config or 'config/probe_dmt.py'
CONFIGS = {'smt': smt_config, 'bptt': bptt_config}
if bptt_args == 'auto':
    bptt_args = '' if task else '--stateful=True'


def config_file(path):  # a trainer's config file argument: none for '' (the trainer's own defaults)
    return [path] if path else []


# the SMT runs' settings before the cells' overrides: does their teacher label many positions?
smt_defaults = configurator.load(configurator.defaults_of('train_smt.py'), config_file(smt_config))
bad = [b for b in backbones.split(',') if b not in BACKBONES] + [m for m in methods.split(',') if m not in CONFIGS]
if bad:
    configurator.fail(f"unknown backbone or method {', '.join(bad)}; backbones: {', '.join(BACKBONES)}; methods: "
                      f"{', '.join(CONFIGS)}")
if sweep and (':' not in sweep or not sweep.split(':', 1)[1] or sweep.split(':', 1)[0].count('/') > 1):
    configurator.fail(f"sweep must look like key:v1,v2,... or smt_key/bptt_key:v1,v2,... (e.g. n_mem:2,4,8), "
                      f"got {sweep!r}")
sweep_key, sweep_values = sweep.split(':', 1)[0] if sweep else None, sweep.split(':', 1)[1].split(',') if sweep else [None]
# the swept key as each trainer names it: 'key' for both, or 'smt_key/bptt_key'
sweep_keys = dict(zip(CONFIGS, sweep_key.split('/') if sweep_key and '/' in sweep_key else [sweep_key] * 2))
BIG = 10 ** 9  # max_iters and eval_interval out of the way: the time budget ends every run
runs = [(v, b, m) for v in sweep_values for b in backbones.split(',') for m in methods.split(',')]
if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    configurator.fail(f"out_dir '{out_dir}' is a file, not a folder; name a folder for the sweep")
try:
    os.makedirs(out_dir, exist_ok=True)
except OSError as e:
    configurator.fail(f"cannot create out_dir '{out_dir}' ({e.strerror}); use another --out_dir")
check_writable(out_dir, f"out_dir={out_dir}")


def tag_of(value, backbone, method):
    return f"{backbone}-{method}" + (f"-{sweep_keys[method]}={value}" if sweep_key else '')


def run_logged(cmd, log_path):
    """Run cmd with its output in log_path, echoing the log's latest line every progress_every seconds; returns
    (returncode, wall seconds, the log's last lines)."""
    t0 = time.time()
    next_report = t0 + progress_every
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=os.path.dirname(os.path.abspath(__file__)),
                                env={**os.environ, 'PYTHONUNBUFFERED': '1'})  # the log fills as the run goes
        while proc.poll() is None:
            time.sleep(0.5)
            if time.time() >= next_report:
                next_report += progress_every
                with open(log_path) as f:
                    last = (f.read().splitlines() or [''])[-1]
                print(f"    {time.time() - t0:.0f}s: {last[:150]}", flush=True)
    with open(log_path) as f:
        tail = f.read().splitlines()[-3:]
    return proc.returncode, time.time() - t0, tail


def trainer_cmd(method, backbone, run_dir, budget, value):
    """One trainer run of a cell: its config, the budget, and the sweep value (a probe: the episode length)."""
    cmd = [sys.executable, f'train_{method}.py', *config_file(CONFIGS[method]), f'--backbone={backbone}',
           f'--out_dir={run_dir}',
           f'--max_time={budget}', f'--max_iters={BIG}', f'--eval_interval={BIG}', '--lr_decay=cosine',
           f'--device={device}', '--overwrite=True'] + (bptt_args.split() if method == 'bptt' else []) + args.split()
    if task:
        # the teacher sees the whole episode and the empty past before it; a many-label teacher labels every
        # transition of it, the first from the initial memory (one pass), the decoder and the RNN read at most
        # decoded_labels and dyn_labels of them
        L = int(value) + 1
        cmd += [f'--dataset=synthetic:{task}:{value}'] + ([f'--context_len={L}'] if method == 'smt' else [])
        if method == 'smt' and smt_defaults.get('labels_per_window', 1) > 1:
            cmd += [f'--labels_per_window={L}'] + [f'--{k}={min(L, smt_defaults[k])}'
                                                   for k in ('decoded_labels', 'dyn_labels') if smt_defaults.get(k)]
    elif sweep_key:
        cmd.append(f'--{sweep_keys[method]}={value}')
    return cmd


results = []
t_start = time.time()
print(f"compare: {len(runs)} runs ({backbones} x {methods}" + (f" x {sweep_key}={','.join(sweep_values)}" if sweep_key
      else '') + f"), {max_time:.0f}s of training each; eval L={eval_L} on {eval_seqs} sequences; logs in {out_dir}/")
for i, (value, backbone, method) in enumerate(runs):
    tag = tag_of(value, backbone, method)
    run_dir = os.path.abspath(os.path.join(out_dir, tag))
    os.makedirs(run_dir, exist_ok=True)
    done = time.time() - t_start
    eta = f", eta {(done / i) * (len(runs) - i) / 60:.1f} min" if i else ''
    print(f"[{i + 1}/{len(runs)}] {tag}: training ({done / 60:.1f} min elapsed{eta})", flush=True)
    budget = max_time * (1 - dmt_frac) if method == 'smt' else max_time
    rec = {'backbone': backbone, 'method': method, 'sweep_key': sweep_key, 'sweep_value': value, 'dir': run_dir}
    rc, wall, first = 0, 0.0, []
    if curriculum and int(value) != curriculum_L:  # the short episodes first, then this cell's from those weights
        short = os.path.join(run_dir, f'L={curriculum_L}')
        print(f"    first L={curriculum_L} for {budget * curriculum_frac:.0f}s", flush=True)
        rc, wall, tail = run_logged(trainer_cmd(method, backbone, short, budget * curriculum_frac, curriculum_L),
                                    os.path.join(run_dir, f'train_L={curriculum_L}.log'))
        first, budget = [f'--init_from={short}/ckpt.pt'], budget * (1 - curriculum_frac)
    if rc == 0:
        rc, wall_cell, tail = run_logged(trainer_cmd(method, backbone, run_dir, budget, value) + first,
                                         os.path.join(run_dir, 'train.log'))
        wall += wall_cell
    ckpt = f'{run_dir}/ckpt.pt'
    if rc == 0 and method == 'smt' and dmt_frac > 0:  # the recipe's second phase: DMT from the SMT checkpoint
        print(f"    SMT done ({wall:.0f}s); DMT for {max_time * dmt_frac:.0f}s", flush=True)
        rc, dmt_wall, tail = run_logged([sys.executable, 'train_dmt.py', *config_file(dmt_config),
                                         f'--init_from={ckpt}', f'--out_dir={run_dir}/dmt',
                                         f'--max_time={max_time * dmt_frac}',
                                         f'--max_iters={BIG}', f'--eval_interval={BIG}', f'--device={device}',
                                         '--overwrite=True'] + dmt_args.split(),
                                        os.path.join(run_dir, 'dmt.log'))
        wall, ckpt = wall + dmt_wall, f'{run_dir}/dmt/ckpt.pt'
    rec['train_wall_s'] = wall
    if rc != 0:
        rec['error'] = tail[-1] if tail else f'exit {rc}'
        print(f"    training failed ({rec['error']}); see the logs in {run_dir}/", flush=True)
        results.append(rec)
        continue
    eval_json = os.path.join(run_dir, 'eval.json')
    rc, _, tail = run_logged([sys.executable, 'eval.py', f'--ckpt={ckpt}', f'--L={0 if task else eval_L}',
                              f'--n_seqs={eval_seqs}', f'--json={eval_json}', f'--device={device}'] + eval_args.split(),
                             os.path.join(run_dir, 'eval.log'))
    if rc != 0:
        rec['error'] = tail[-1] if tail else f'exit {rc}'
        print(f"    eval failed ({rec['error']}); see {run_dir}/eval.log", flush=True)
        results.append(rec)
        continue
    with open(eval_json) as f:
        rec['eval'] = json.load(f)
    rec['iters'] = rec['eval']['iter_num']  # the checkpoint's iteration: where the time budget ended the run
    rec['smt_iters'] = rec['eval']['smt_iter_num']  # an SMT -> DMT cell: the SMT steps before its DMT steps
    results.append(rec)
    print(f"    {rec['iters']} iterations, {wall:.0f}s wall: RNN {rec['eval']['rnn']['bits']:.4f} bits/token", flush=True)

# -----------------------------------------------------------------------------
# the table: a row per (sweep value,) backbone, a column per method; bits/token of the RNN alone (eval.py)
method_list = methods.split(',')
names = {'smt': f'SMT -> DMT ({100 * (1 - dmt_frac):g}% / {100 * dmt_frac:g}%)' if dmt_frac else 'SMT', 'bptt': 'BPTT'}
# the SMT cell's diagnostics (why an RNN does or does not follow its teacher): the teacher's next-token CE and the
# drift MSE of the RNN's own rollout from the teacher's memories, at its last measured step
with_smt = 'smt' in method_list
head = ([sweep_key] if sweep_key else []) + ['backbone'] + [names[m] for m in method_list] + (
    ['teacher (SMT)', 'drift MSE at t (SMT)'] if with_smt else [])
lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
for value in sweep_values:
    for backbone in backbones.split(','):
        cells, smt_eval = [], {}
        for method in method_list:
            r = next(r for r in results if (r['sweep_value'], r['backbone'], r['method']) == (value, backbone, method))
            if method == 'smt':
                smt_eval = r.get('eval') or {}
            score = f"{r['eval']['rnn']['acc']:.1%} acc, " if task and 'eval' in r else ''
            cells.append(f"failed ({r['train_wall_s']:.0f} s)" if 'eval' not in r else
                         f"{score}{r['eval']['rnn']['bits']:.3f} ({r['train_wall_s']:.0f} s, "
                         + (f"{r['smt_iters']} + " if r.get('smt_iters') else '') + f"{r['iters']} it)")
        if with_smt:
            drift = list(((smt_eval.get('drift') or {}).get('from_initial') or {}).items())
            cells += [f"{smt_eval['teacher']['bits']:.3f}" if smt_eval.get('teacher') else '-',
                      f"{drift[-1][1]:.4f} (t={drift[-1][0]})" if drift else '-']
        lines.append('| ' + ' | '.join(([value] if sweep_key else []) + [backbone] + cells) + ' |')
base = next((r['eval']['baselines'] for r in results if 'eval' in r), None)
first = next((r['eval'] for r in results if 'eval' in r), None)
lines.append('')
held_out = (f"{eval_seqs} held-out episodes of each length, accuracy on the targets and" if task else
            f"{eval_seqs} held-out sequences of L={eval_L} (dataset {first['dataset'] if first else '?'}),")
lines.append(f"RNN alone from its learned initial memory: eval.py on {held_out} bits/token; in brackets the run's wall "
             f"time (training budget {max_time:.0f} s plus start-up and final evaluation) and iterations.")
if curriculum:
    lines.append(f"Each cell trained first at L={curriculum_L} for {curriculum_frac:g} of its training time, then at its "
                 f"own length from those weights.")
if base:
    lines.append(f"Baselines: unigram {base['unigram']:.3f}, bigram {base['bigram']:.3f} bits/token.")
table = '\n'.join(lines) + '\n'
with open(os.path.join(out_dir, 'table.md'), 'w') as f:
    f.write(table)
with open(os.path.join(out_dir, 'results.json'), 'w') as f:
    json.dump({'max_time': max_time, 'eval_L': eval_L, 'eval_seqs': eval_seqs, 'sweep': sweep, 'args': args,
               'curriculum': curriculum,
               'runs': results}, f, indent=1)
if task:  # accuracy (bits where no accuracy) vs episode length, one line per method
    from plot import plot_results
    plot_results([{**r['eval'], 'L': int(r['sweep_value'])} for r in results if 'eval' in r],
                 os.path.join(out_dir, 'results.png'), x_key='L', title=f"synthetic:{task}, {max_time:.0f} s per run")
print(f"\n{table}\nwritten {out_dir}/table.md and {out_dir}/results.json ({(time.time() - t_start) / 60:.1f} min)")
failed = [f"{tag_of(r['sweep_value'], r['backbone'], r['method'])} ({r['error'][:150]})"
          for r in results if 'error' in r]
if failed:
    configurator.fail(f"{len(failed)} of {len(runs)} cells failed: {'; '.join(failed)}; their logs are in {out_dir}/")
