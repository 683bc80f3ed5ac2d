"""Pixel sequences and pictures: the IDX reader round-trips, a prepare step turns IDX files into a pixel token stream
(idempotently), and sample.py draws a PNG grid from a pixel checkpoint."""
import gzip
import json
import os

import numpy as np
import pytest

from conftest import PNG_MAGIC, TINY, run
from data.idx import read_idx, write_idx

@pytest.mark.parametrize('dtype', [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize('name', ['a-idx3-ubyte', 'a-idx3-ubyte.gz'])
def test_idx_round_trip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = str(tmp_path / name)
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)


def test_idx_reads_the_standard_header(tmp_path):
    """The byte layout MNIST documents: magic 0x00000803, then the dimensions big-endian, then the pixels."""
    pixels = np.arange(2 * 2 * 3, dtype=np.uint8)
    raw = bytes([0, 0, 8, 3]) + (2).to_bytes(4, 'big') + (2).to_bytes(4, 'big') + (3).to_bytes(4, 'big')
    (tmp_path / 'x.gz').write_bytes(gzip.compress(raw + pixels.tobytes()))
    assert np.array_equal(read_idx(str(tmp_path / 'x.gz')), pixels.reshape(2, 2, 3))
    (tmp_path / 'bad').write_bytes(raw + pixels.tobytes()[:-1])
    with pytest.raises(ValueError):
        read_idx(str(tmp_path / 'bad'))


def fake_idx_folder(folder, shape=(4, 4), n_train=64, n_val=12):
    """MNIST-format image files of learnable little pictures: a bright bar on a dark background."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for name, n in (('train-images-idx3-ubyte.gz', n_train), ('t10k-images-idx3-ubyte.gz', n_val)):
        img = np.zeros((n,) + shape, dtype=np.uint8)
        img[np.arange(n), rng.integers(0, shape[0], n), :] = 255
        write_idx(os.path.join(folder, name), img)
    return str(folder)


@pytest.fixture(scope='module')
def pixel_data(tmp_path_factory):
    src = fake_idx_folder(tmp_path_factory.mktemp('idx'))
    out = str(tmp_path_factory.mktemp('pixels'))
    p = run(['data/mnist/prepare.py', f'--source={src}', f'--out_dir={out}'])
    assert 'writing train.bin' in p.stdout
    return out


def test_prepare_writes_a_pixel_stream(pixel_data, tmp_path):
    tokens = np.fromfile(os.path.join(pixel_data, 'train.bin'), dtype=np.uint16)
    assert len(tokens) == 64 * 16 and set(np.unique(tokens)) <= {0, 255}
    with open(os.path.join(pixel_data, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['vocab_size'] == 256 and meta['tokenizer'] == 'pixels' and meta['image_shape'] == [4, 4]
    # idempotent: a second run from the same images leaves the files alone
    before = os.path.getmtime(os.path.join(pixel_data, 'train.bin'))
    p = run(['data/fashion_mnist/prepare.py', f'--source={fake_idx_folder(tmp_path / "again")}',
             f'--out_dir={pixel_data}'])
    assert 'already prepared' in p.stdout and os.path.getmtime(os.path.join(pixel_data, 'train.bin')) == before


def test_prepare_errors_are_one_line(tmp_path):
    p = run(['data/mnist/prepare.py', f'--source={tmp_path / "nowhere"}', f'--out_dir={tmp_path}'], check=False)
    assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].startswith('error: '), p.stderr


def test_sample_draws_a_png_grid_from_a_pixel_checkpoint(pixel_data, tmp_path):
    run(['train_smt.py', f'--dataset={pixel_data}', f'--out_dir={tmp_path}', '--max_iters=3', '--eval_interval=3']
        + TINY)
    p = run(['sample.py', f'--out_dir={tmp_path}', '--num_samples=3', f'--png={tmp_path / "grid.png"}'])
    assert 'wrote' in p.stdout and 'completions' in p.stdout
    data = (tmp_path / 'grid.png').read_bytes()
    assert data.startswith(PNG_MAGIC)
    import matplotlib.image
    assert matplotlib.image.imread(str(tmp_path / 'grid.png')).ndim == 3


@pytest.mark.skipif(not os.path.isfile('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'),
                    reason='the Debian package dataset-fashion-mnist is not installed')
def test_fashion_mnist_package_files_read():
    img = read_idx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')
    assert img.shape == (10000, 28, 28) and img.dtype == np.uint8


def test_whole_image_smt_then_dmt(pixel_data, tmp_path):
    """The whole-image recipe end to end on 4x4 images: SMT windows are images (context 17 = the empty past + 16
    pixels, every pixel labelled, subsets decoded and regressed from a memory plan), then DMT rolls out within
    images, from the first pixel and from the teacher's memory at a later one, and eval.py reads images whole."""
    smt, dmt = tmp_path / 'smt', tmp_path / 'dmt'
    p = run(['train_smt.py', f'--dataset={pixel_data}', f'--out_dir={smt}', '--max_iters=4', '--eval_interval=4']
            + TINY + ['--encoder_type=causal', '--context_len=17', '--labels_per_window=17', '--decoded_labels=3',
                      '--dyn_labels=3', '--eval_seq_len=16'])
    assert '17 label(s) per window' in p.stdout and 'eval 4' in p.stdout
    p = run(['train_dmt.py', f'--init_from={smt}/ckpt.pt', f'--out_dir={dmt}', '--max_iters=3', '--eval_interval=3',
             '--rollout_len=8', '--label_every=1', '--dyn_labels=4', '--batch_size=4', '--eval_seq_len=16',
             '--eval_seqs=4', '--eval_windows=8', '--log_interval=1', '--device=cpu'])
    assert 'Td=8 from the both start(s)' in p.stdout and 'eval 3' in p.stdout
    p = run(['eval.py', f'--ckpt={dmt}/ckpt.pt', '--L=16', '--n_seqs=4', '--n_buckets=4'])
    assert 'teacher (next token' in p.stdout
