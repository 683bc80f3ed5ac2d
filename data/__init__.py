"""
The data layer: one interface over every dataset. load_data(name) returns an object with
  vocab_size, meta, describe(), sequences(split, n, length, g), smt_windows(split, n, Tc, Tf, short_frac, g[, n_labels]),
  baselines(x, y)
for a token stream (data/stream.py: data/<name>/{train,val}.bin + meta.json, prepared on first use by
data/<name>/prepare.py) or a synthetic task generated on the fly (data/synthetic: 'synthetic:<task>[:<L>]').
Batches are a pure function of (seed, iteration, micro-batch) through step_generator. Mistakes in names, files or
sizes raise ValueError with a one-line message; the scripts print it and exit. Metadata is read as data only
(data/meta.py): a folder passed as --dataset runs no code.
(A regular package, so an installed module named `data` cannot shadow it.)
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.distributed as dist

from .meta import meta_path, read_meta
from .stream import TokenStream, whole_windows

DATA = os.path.dirname(os.path.abspath(__file__))


def prepare_command(dataset):
    """How to prepare a dataset: data/<name>/prepare.py, or data/<name>/prepare.py --tokenizer=gpt2 for <name>_gpt2."""
    base, tok = (dataset[:-5], ['--tokenizer=gpt2']) if dataset.endswith('_gpt2') else (dataset, [])
    script = os.path.join(DATA, base, 'prepare.py')
    return [sys.executable, script] + tok if os.path.isfile(script) else None


def load_data(dataset, sys_, prepare=True):
    """The dataset as a TokenStream (memmapped uint16 token arrays and the meta dict) or, for
    'synthetic:<task>[:<length>]', as synthetic Episodes. A missing dataset is prepared (on rank 0, the others wait),
    so the default run needs no separate step. A dataset with a '/' in its name is a folder path holding the files."""
    if dataset.split(':')[0] == 'synthetic':  # episodic tasks, no files: data/synthetic/
        from .synthetic import load_synthetic
        return load_synthetic(dataset)
    data_dir = os.path.normpath(dataset) if '/' in dataset else os.path.join(DATA, dataset)
    paths = [os.path.join(data_dir, f) for f in ('train.bin', 'val.bin')]
    if not all(map(os.path.isfile, paths)) or meta_path(data_dir) is None:
        cmd = None if '/' in dataset else prepare_command(dataset)
        if cmd is None:
            known = sorted(d for d in os.listdir(DATA) if os.path.isfile(os.path.join(DATA, d, 'prepare.py')))
            raise ValueError(f"dataset '{dataset}' not found: no {data_dir}/train.bin and no data/{dataset}/prepare.py "
                             f"(datasets: {', '.join(known)}, synthetic:<task>)")
        if not prepare:
            raise ValueError(f"dataset '{dataset}' is not prepared: run {' '.join(cmd[1:])}")
        if sys_['master']:
            print(f"dataset '{dataset}' not prepared yet; running {' '.join(os.path.relpath(c) for c in cmd[1:])}")
            if subprocess.run(cmd).returncode != 0:
                raise ValueError(f"preparing '{dataset}' failed (see above); run {' '.join(cmd[1:])} yourself to retry")
        if sys_['ddp']:
            dist.barrier()
    redo = f"write the files in {data_dir}/ again" if '/' in dataset else f"delete data/{dataset}/ and prepare it again"
    meta = read_meta(data_dir, redo)
    vocab_size = meta['vocab_size']
    arrays = []
    for path in paths:
        if os.path.getsize(path) % 2 or os.path.getsize(path) == 0:
            raise ValueError(f"{path} is empty or truncated (not whole uint16 tokens); {redo}")
        arr = np.memmap(path, dtype=np.uint16, mode='r')
        if int(arr.max()) >= vocab_size:
            raise ValueError(f"{path} holds token {int(arr.max())} >= vocab_size {vocab_size} of "
                             f"{os.path.basename(meta_path(data_dir))}; {redo}")
        arrays.append(arr)
    return TokenStream(arrays[0], arrays[1], meta)


def need_tokens(data, split, length, key):
    """Raise ValueError (one line) when a split of a token stream holds less than one window of `length` tokens, so
    that a run stops before any work; the message names the split and the config key that sets the length.
    Episodic datasets have no stream: skipped."""
    stream = getattr(data, split, None)
    if stream is not None and len(stream) < length + 2:
        raise ValueError(f"the {split} split of the data has {len(stream)} tokens, fewer than one window of {length} "
                         f"({key}); lower {key.split(' ')[0]}, or use more data")


def step_generator(seed, iter_num, index):
    """The generator for micro-batch `index` of iteration `iter_num`. Data are a pure function of these numbers, so
    a resumed run sees exactly the batches an uninterrupted one would, and a run on N processes the same global
    batch as on one (each process takes its share of the indices)."""
    return torch.Generator().manual_seed(hash((seed, iter_num, index)) & 0x7FFF_FFFF_FFFF_FFFF)


def eval_sequences(data, n_seqs, seq_len, seed=0):
    """The fixed validation sequences (x, y): the same tokens for every checkpoint and every trainer. On a stream of
    images (meta image_shape) each sequence starts at an image's first pixel, so a position is a pixel's place in
    its image and eval.py's position buckets are rows (--n_buckets=28 for 28x28 images at L=784)."""
    g = torch.Generator().manual_seed(seed)
    shape = data.meta.get('image_shape')
    if shape is None:
        return data.sequences('val', n_seqs, seq_len, g)
    size = int(np.prod(shape))
    n_images = (len(data.val) - seq_len - 1) // size + 1  # images at which a whole sequence (and its target) starts
    if n_images < 1:
        raise ValueError(f"the validation images hold {len(data.val)} pixels, fewer than one sequence of {seq_len}")
    starts = torch.randint(n_images, (n_seqs,), generator=g) * size
    return data.windows_at('val', starts, seq_len)


def data_meta(dataset, data):
    """What a checkpoint records about its data, so that sample.py and eval.py can check and decode."""
    return {'dataset': dataset, 'vocab_size': data.vocab_size, 'tokenizer': data.meta.get('tokenizer', 'bytes')}
