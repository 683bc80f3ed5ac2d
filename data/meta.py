"""
A dataset folder's metadata: meta.json (vocab_size, tokenizer, image_shape, where the tokens came from), written by
the prepare scripts and checked on every read. Datasets get shared, so a data folder must be data: the older
meta.pkl is still read, but through an unpickler that builds plain values only (dict, list, tuple, str, numbers,
booleans, None); a pickle that names any global (os.system, a class, ...) is refused unrun. Every problem is a
ValueError with one line naming the file; the scripts print it and exit.
"""
import json
import math
import os
import pickle

# tokenizer -> the largest vocabulary its tokens can have (gpt2: exactly tiktoken's 50257)
TOKENIZERS = {'bytes': 256, 'pixels': 256, 'gpt2': 50257}
MAX_IMAGE = 1 << 24  # pixels in one image: far above any image this code models, far below a garbage value


class _NamesAGlobal(pickle.UnpicklingError):
    pass


class _PlainUnpickler(pickle.Unpickler):
    """Plain values need no global; any global is code that unpickling would import and may call."""

    def find_class(self, module, name):
        raise _NamesAGlobal(f"{module}.{name}")


def meta_path(folder):
    """The metadata file of a dataset folder: meta.json, else a legacy meta.pkl, else None."""
    for name in ('meta.json', 'meta.pkl'):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def read_meta(folder, redo='prepare it again'):
    """The checked metadata dict of a dataset folder (meta.json, else meta.pkl read as plain data only)."""
    path = meta_path(folder)
    if path is None:
        raise ValueError(f"{folder} has no meta.json; {redo}")
    try:
        with open(path, 'rb') as f:
            meta = json.load(f) if path.endswith('.json') else _PlainUnpickler(f).load()
    except _NamesAGlobal as e:
        raise ValueError(f"{path} holds code (it names {e}), not plain data: it was not loaded; {redo}, or get the "
                         f"dataset from a source you trust")
    except Exception as e:
        raise ValueError(f"{path} is unreadable ({type(e).__name__}); {redo}")
    return check_meta(meta, path, redo)


def check_meta(meta, where, redo='prepare it again'):
    """Check the values a dataset's metadata must have; returns it with image_shape as a tuple of ints."""
    def bad(what):
        return ValueError(f"{where}: {what}; {redo}")
    if not isinstance(meta, dict):
        raise bad(f"holds a {type(meta).__name__}, not a dict of metadata")
    v = meta.get('vocab_size')
    if type(v) is not int or not 1 <= v <= 1 << 16:
        raise bad(f"vocab_size={v!r} must be an int in [1, 65536] (tokens are uint16)")
    tok = meta.setdefault('tokenizer', 'bytes')  # files written before the key existed hold bytes
    if tok not in TOKENIZERS:
        raise bad(f"tokenizer={tok!r} is unknown (known: {', '.join(TOKENIZERS)}): its tokens cannot be decoded")
    limit = TOKENIZERS[tok]
    if (tok == 'gpt2' and v != limit) or v > limit:
        raise bad(f"vocab_size={v} does not fit tokenizer {tok!r} ({'exactly' if tok == 'gpt2' else 'at most'} "
                  f"{limit})")
    shape = meta.get('image_shape')
    if shape is not None:
        ok = isinstance(shape, (list, tuple)) and shape and all(type(s) is int and s > 0 for s in shape)
        if not ok or math.prod(shape) > MAX_IMAGE:
            raise bad(f"image_shape={shape!r} must be positive ints of at most {MAX_IMAGE:,} pixels in all, e.g. "
                      f"[28, 28]")
        meta['image_shape'] = tuple(shape)
    return meta


def write_meta(folder, meta):
    """Write folder/meta.json atomically (checked first): the prepare scripts write it last, so a half-written
    folder never looks prepared."""
    check_meta(dict(meta), os.path.join(folder, 'meta.json'))
    path = os.path.join(folder, 'meta.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)
