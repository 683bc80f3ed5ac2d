"""
TinyStories as ASCII bytes (vocabulary 256), the paper's language-modelling data: train.bin / val.bin / meta.json.

    python data/tinystories/prepare.py                       # downloads TinyStories-{train,valid}.txt (needs internet)
    python data/tinystories/prepare.py --source=stories.txt  # a local copy: the last 1% becomes validation
    python data/tinystories/prepare.py --source=DIR          # a folder holding TinyStories-train.txt and -valid.txt

Non-ASCII characters are dropped and the `<|endoftext|>` separators become blank lines, so each byte is a token.
Idempotent: an output made from the same source files (names and sizes) is left alone.
"""
import argparse
import os
import sys
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from data.meta import read_meta, write_meta  # noqa: E402

URL = 'https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/'
FILES = {'train': 'TinyStories-train.txt', 'val': 'TinyStories-valid.txt'}
CHUNK = 1 << 26  # bytes of text per write: keeps memory flat on the 2 GB training file


def download(folder):
    os.makedirs(folder, exist_ok=True)
    for name in FILES.values():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            continue
        print(f"downloading {URL + name}")
        try:
            urllib.request.urlretrieve(URL + name, path + '.part', reporthook=progress)
        except OSError as e:
            sys.exit(f"\nerror: download failed ({e}); offline, pass --source=PATH to a local copy")
        os.replace(path + '.part', path)
        print()
    return [os.path.join(folder, FILES['train']), os.path.join(folder, FILES['val'])]


def progress(blocks, block_size, total):
    if total > 0:
        print(f"\r  {min(blocks * block_size, total) / 1e6:,.0f} / {total / 1e6:,.0f} MB", end='', flush=True)


def ascii_lines(path):
    """The file's lines as ASCII bytes: other characters dropped, separators turned into blank lines."""
    with open(path, encoding='utf-8', errors='ignore') as f:
        for line in f:
            if line.strip() == '<|endoftext|>':
                line = '\n'
            yield line.encode('ascii', errors='ignore')


def write_bin(lines, out_path, total_bytes):
    """Stream lines into a uint16 token file (written to a temp name, then renamed). Returns the token count."""
    n, buf = 0, bytearray()
    with open(out_path + '.tmp', 'wb') as f:
        for line in lines:
            buf += line
            if len(buf) >= CHUNK:
                np.frombuffer(bytes(buf), dtype=np.uint8).astype(np.uint16).tofile(f)
                n += len(buf)
                buf.clear()
                print(f"\r  {os.path.basename(out_path)}: {n / 1e6:,.0f}M tokens ({n / max(total_bytes, 1):.0%})",
                      end='', flush=True)
        np.frombuffer(bytes(buf), dtype=np.uint8).astype(np.uint16).tofile(f)
        n += len(buf)
    os.replace(out_path + '.tmp', out_path)
    print(f"\r  {os.path.basename(out_path)}: {n:,} tokens" + ' ' * 20)
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', default=None, help='a text file or a folder with the two TinyStories files')
    p.add_argument('--out_dir', default=HERE)
    p.add_argument('--val_frac', type=float, default=0.01, help='for a single source file: the validation share')
    args = p.parse_args()

    if args.source is None:
        sources = download(os.path.join(args.out_dir, 'raw'))
    elif os.path.isdir(args.source):
        sources = [os.path.join(args.source, FILES['train']), os.path.join(args.source, FILES['val'])]
    else:
        sources = [args.source]
    for s in sources:
        if not os.path.isfile(s):
            sys.exit(f"error: --source: no file {s}")
    fingerprint = [[os.path.basename(s), os.path.getsize(s)] for s in sources]  # lists: as JSON reads them back
    try:
        old = read_meta(args.out_dir)  # meta.json, or an older folder's meta.pkl (read as plain data only)
    except ValueError:
        old = {}
    if [list(f) for f in old.get('source') or []] == fingerprint:
        print(f"{args.out_dir}: already prepared from {fingerprint}, nothing to do")
        return
    os.makedirs(args.out_dir, exist_ok=True)
    if len(sources) == 2:
        n_train = write_bin(ascii_lines(sources[0]), os.path.join(args.out_dir, 'train.bin'), fingerprint[0][1])
        n_val = write_bin(ascii_lines(sources[1]), os.path.join(args.out_dir, 'val.bin'), fingerprint[1][1])
    else:  # one file: its last val_frac of lines is the validation split
        with open(sources[0], 'rb') as f:
            n_lines = sum(1 for _ in f)
        cut = int(n_lines * (1 - args.val_frac))
        lines = ascii_lines(sources[0])
        n_train = write_bin((l for _, l in zip(range(cut), lines)), os.path.join(args.out_dir, 'train.bin'),
                            fingerprint[0][1])
        n_val = write_bin(lines, os.path.join(args.out_dir, 'val.bin'), fingerprint[0][1])
    if n_train < 2 or n_val < 2:
        sys.exit(f"error: the source is too small ({n_train} train, {n_val} val tokens)")
    write_meta(args.out_dir, {'vocab_size': 256, 'tokenizer': 'bytes', 'source': fingerprint})  # last: see write_meta
    print(f"{args.out_dir}: {n_train:,} train tokens, {n_val:,} val tokens, vocab 256 (ASCII bytes)")


if __name__ == '__main__':
    main()
