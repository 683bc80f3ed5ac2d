"""
IDX files (the format of MNIST and Fashion-MNIST), and the pixel token stream both prepare scripts write.

IDX: two zero bytes, a type byte, the number of dimensions, each dimension as a big-endian uint32, then the data,
big-endian. Files may be gzipped (.gz). Pixels as tokens: each 8-bit pixel is one token (vocabulary 256), images
in raster-scan order concatenated into one stream with no separators (docs/method.md, section 8), so bits per pixel
is the ordinary bits/token. meta.json records image_shape, and tokenizer 'pixels' tells sample.py to draw images.
"""
import gzip
import hashlib
import os
import shutil
import sys
import urllib.request

import numpy as np

from .meta import read_meta, write_meta

DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'), 0x0D: np.dtype('>f4'),
          0x0E: np.dtype('>f8')}


def _open(path, mode='rb'):
    return gzip.open(path, mode) if path.endswith('.gz') else open(path, mode)


def read_idx(path):
    """The array stored in an IDX file (gzipped or not), in native byte order."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim, dtype = data[3], np.dtype(DTYPES[data[2]])
    shape = tuple(int(d) for d in np.frombuffer(data, dtype='>u4', count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) != offset + int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: {len(data) - offset} data bytes, but the header says {shape} of {dtype}")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder('='))


def write_idx(path, array):
    """Write an array as an IDX file (gzipped if path ends in .gz); the inverse of read_idx."""
    array = np.asarray(array)
    code = next((c for c, d in DTYPES.items() if np.dtype(d).kind == array.dtype.kind
                 and np.dtype(d).itemsize == array.dtype.itemsize), None)
    if code is None:
        raise ValueError(f"IDX has no type for {array.dtype} (uint8, int8, int16, int32, float32, float64)")
    with _open(path, 'wb') as f:
        f.write(bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype='>u4').tobytes())
        f.write(array.astype(np.dtype(DTYPES[code]).newbyteorder('>')).tobytes())


def find_or_download(names, folders, urls, raw_dir):
    """Paths of the IDX files `names` (each plain or .gz): from the first folder that has them all, else downloaded
    into raw_dir from the first mirror that answers. Returns (paths, where they came from)."""
    for folder in folders:
        paths = [next((os.path.join(folder, n + ext) for ext in ('.gz', '') if
                       os.path.isfile(os.path.join(folder, n + ext))), None) for n in names]
        if all(paths):
            return paths, folder
    os.makedirs(raw_dir, exist_ok=True)
    errors = []
    for url in urls:
        try:
            paths = []
            for n in names:
                dest = os.path.join(raw_dir, n + '.gz')
                if not os.path.isfile(dest):
                    download(url + n + '.gz', dest)
                paths.append(dest)
            return paths, url
        except OSError as e:
            errors.append(f"{url}: {e}")
    sys.exit(f"error: no {', '.join(names)} in {', '.join(folders)} and every download failed ({'; '.join(errors)}); "
             f"drop the IDX files into {raw_dir} or pass --source=DIR")


def download(url, dest):
    print(f"downloading {url}")
    tmp = dest + '.tmp'
    with urllib.request.urlopen(url, timeout=30) as r, open(tmp, 'wb') as f:
        total, done = int(r.headers.get('Content-Length', 0)), 0
        while chunk := r.read(1 << 20):
            f.write(chunk)
            done += len(chunk)
            if total:
                print(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB", end='', flush=True)
    print()
    shutil.move(tmp, dest)  # only a complete download gets the real name


def write_pixels(out_dir, train_images, val_images, source):
    """Images (N, H, W) uint8 -> train.bin / val.bin (uint16 raster-scan pixel tokens) and meta.json, each written
    atomically, meta last. Idempotent: an output made from the same pixels is left alone."""
    shape = tuple(train_images.shape[1:])
    if val_images.shape[1:] != shape or train_images.dtype != np.uint8 or val_images.dtype != np.uint8:
        sys.exit(f"error: train and val images must be uint8 of one shape, got {train_images.dtype} "
                 f"{train_images.shape}, {val_images.dtype} {val_images.shape}")
    sha1 = hashlib.sha1(train_images.tobytes() + val_images.tobytes()).hexdigest()
    try:
        if read_meta(out_dir).get('sha1') == sha1:  # meta.json, or an older folder's meta.pkl (plain data only)
            print(f"{out_dir}: already prepared from the same images, nothing to do")
            return
    except ValueError:
        pass
    os.makedirs(out_dir, exist_ok=True)
    for name, images in (('train.bin', train_images), ('val.bin', val_images)):
        print(f"writing {name}: {len(images):,} images, {images.size:,} pixel tokens")
        tmp = os.path.join(out_dir, name + '.tmp')
        images.reshape(-1).astype(np.uint16).tofile(tmp)
        os.replace(tmp, os.path.join(out_dir, name))
    meta = {'vocab_size': 256, 'tokenizer': 'pixels', 'image_shape': shape, 'source': source, 'sha1': sha1,
            'n_train': len(train_images), 'n_val': len(val_images)}
    write_meta(out_dir, meta)
    print(f"{out_dir}: {train_images.size:,} train tokens, {val_images.size:,} val tokens "
          f"({shape[0]}x{shape[1]} images, vocab 256 pixels)")


def prepare_images(out_dir, folders, urls, source_arg):
    """The whole prepare step of an MNIST-format dataset: the train and test image files -> write_pixels.
    The test images are the validation stream. Looks in `folders`, then out_dir/raw/, then downloads from `urls`;
    source_arg: a folder the user named (--source), the only place looked in then, or None."""
    names = ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte']
    raw_dir = os.path.join(out_dir, 'raw')  # where users drop IDX files, and where downloads go
    folders = list(folders) + [raw_dir]
    if source_arg is not None:
        if not os.path.isdir(source_arg):
            sys.exit(f"error: --source={source_arg}: no such folder")
        folders, urls = [source_arg], []
    paths, where = find_or_download(names, folders, urls, raw_dir)
    print(f"source: {where}")
    images = []
    for p in paths:
        print(f"reading {p}")
        try:
            images.append(read_idx(p))
        except (OSError, ValueError, EOFError) as e:
            sys.exit(f"error: {p} is unreadable ({e}); delete it to download it again, or replace it")
        if images[-1].ndim != 3 or images[-1].dtype != np.uint8:
            sys.exit(f"error: {p} holds {images[-1].dtype} {images[-1].shape}, not uint8 images (N, H, W)")
    write_pixels(out_dir, images[0], images[1], where)
