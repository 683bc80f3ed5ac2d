"""
Generate with a trained RNN alone: readout -> sample -> step, O(1) time and memory per token.

    python sample.py                                   # from out-shakespeare/ckpt.pt, starting from the RNN's own initial memory
    python sample.py --start="ROMEO:" --num_samples=2  # the RNN reads the prompt itself, then continues
    python sample.py --start=FILE:prompt.txt
    python sample.py --seed_with_encoder=True --start="..."  # the reference mode: the teacher encodes the prompt
    python sample.py --out_dir=out-fashion --num_samples=8    # pixel checkpoints: a PNG grid, not text

Text is printed as it is made, one sample after another; Ctrl-C stops cleanly, keeping what was printed.
A checkpoint of a pixel dataset (meta tokenizer 'pixels') draws images instead of text: one PNG (--png, default
<out_dir>/samples.png) with a row of generated images and a row of held-out images over a row of their
completions from the top half. The stream has no separators between images, so the RNN first reads one held-out
image to find the raster phase, then draws the next image.
"""
import codecs
import math
import os
import sys

import numpy as np
import torch

import configurator
from checkpoint import check_writable, load_checkpoint
from common import setup_system
from configurator import at_least, device_rule, dtype_rule, satisfies
from data import load_data
from data.meta import check_meta
from model import RNN, RNNConfig

out_dir = 'out-shakespeare'
ckpt = ''  # a checkpoint file; default out_dir/ckpt.pt
start = ''  # prompt text, or FILE:path; empty: start from the RNN's learned initial memory
num_samples = 3
max_new_tokens = 500
temperature = 0.8  # 0: greedy (always the most likely token)
top_k = 200  # 0: no top-k filtering
seed = 1337
device = 'cpu'
dtype = 'float32'
seed_with_encoder = False
png = ''  # pixel checkpoints: where the image grid goes; default <out_dir>/samples.png
config = configurator.load(globals(), sys.argv[1:])
configurator.check(config, {  # every key, before the checkpoint is read
    'num_samples': at_least(1), 'max_new_tokens': at_least(0), 'temperature': at_least(0.0), 'top_k': at_least(0),
    'start': satisfies(lambda v, _: not v.startswith('FILE:') or os.path.isfile(v[5:]), "no such file",
                       "FILE:path names a text file holding the prompt"),
    'device': device_rule, 'dtype': dtype_rule,
})

sys_ = setup_system(device, dtype, seed)
ck = load_checkpoint(ckpt or f"{out_dir}/ckpt.pt")
meta = ck.get('meta', {})
vocab_size, tokenizer = ck['rnn_args']['vocab_size'], meta.get('tokenizer', 'bytes')
if tokenizer != 'synthetic':  # a probe's tokens are printed as numbers; any other must be a known text or pixels
    try:
        check_meta({'vocab_size': vocab_size, 'tokenizer': tokenizer}, f"{ckpt or out_dir} (its data's metadata)",
                   "retrain it on a dataset prepared by data/*/prepare.py")
    except ValueError as e:
        configurator.fail(str(e))
rnn = RNN(RNNConfig(**ck['rnn_args']))
rnn.load_state_dict(ck['rnn'])
rnn.to(sys_['device']).eval()

pixels = tokenizer == 'pixels'
if tokenizer == 'gpt2':
    try:
        import tiktoken
    except ImportError:
        configurator.fail("this checkpoint's tokens are GPT-2 BPE: pip install tiktoken")
    try:
        enc = tiktoken.get_encoding('gpt2')
    except Exception as e:  # offline without a cache: tiktoken's download fails deep inside requests
        configurator.fail(f"tiktoken could not load the gpt2 vocabulary ({type(e).__name__}); offline, set "
                          f"TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cache files")
    encode, token_bytes = enc.encode_ordinary, enc.decode_single_token_bytes
elif tokenizer == 'synthetic':
    encode, token_bytes = (lambda s: [int(t) for t in s.split()]), (lambda t: f"{t} ".encode())
else:
    encode, token_bytes = (lambda s: list(s.encode('utf-8'))), (lambda t: bytes([t]))

if start.startswith('FILE:'):
    try:
        with open(start[5:], encoding='utf-8') as f:
            start = f.read()
    except (OSError, UnicodeDecodeError) as e:
        configurator.fail(f"start={start}: cannot read it as UTF-8 text ({type(e).__name__}); name a text file")
if pixels and start:
    configurator.fail("start= is a text prompt; a pixel checkpoint prompts itself with held-out images")
try:
    prompt = encode(start)
except ValueError:  # a synthetic prompt is token numbers
    configurator.fail(f"start={start!r}: a probe's prompt is token numbers separated by spaces")
bad = sorted({t for t in prompt if t >= vocab_size})
if bad:
    configurator.fail(f"the prompt has tokens {bad[:5]} outside this model's vocabulary of {vocab_size} "
                      f"({meta.get('dataset', '?')}); use characters the training data has")
if seed_with_encoder and 'teacher' not in ck:
    configurator.fail("seed_with_encoder=True needs a checkpoint with a teacher (an SMT checkpoint)")
if seed_with_encoder:
    from encoder import Teacher, TeacherConfig
    teacher = Teacher(TeacherConfig(**ck['teacher_args']))
    teacher.load_state_dict(ck['teacher'])
    teacher.to(sys_['device']).eval()


def read(x):
    """The memory after reading x (B, T): by the RNN alone from its initial memory, or (seed_with_encoder, the
    reference protocol) by the teacher encoding the last Tc tokens."""
    if seed_with_encoder:
        return teacher.memory(x, x.size(1) - 1)
    m = rnn.initial_memory(x.size(0))
    return rnn.run(m, x)[:, -1] if x.size(1) else m  # the RNN reads the prompt on its own


def generate(m, n_tokens):
    """readout -> sample -> step, n_tokens times from memory m: yields each step's tokens (B,) as a list."""
    for _ in range(n_tokens):
        logits = rnn.logits(m).float()
        if temperature == 0:  # greedy: the most likely token
            nxt = logits.argmax(-1)
        else:
            logits = logits / temperature
            if top_k:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float('inf')
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)[:, 0]
        m = rnn.step(m, nxt)
        yield nxt.tolist()


def generate_all(m, n_tokens):
    """The tokens (B, n_tokens) as lists."""
    return [list(row) for row in zip(*generate(m, n_tokens))] if n_tokens else [[] for _ in range(m.size(0))]


def draw_images(rows, shape, path):
    """rows: [(label, images (n, H*W) uint8, rows of the image given as a prompt or None)] -> one PNG grid."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n + 1.2, 1.3 * len(rows)), squeeze=False)
    for r, (label, images, given) in enumerate(rows):
        axes[r][0].set_title(label, loc='left', fontsize=8)
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(np.asarray(images[c], dtype=np.uint8).reshape(shape), cmap='gray', vmin=0, vmax=255)
            if given:  # where the prompt ends and the RNN's pixels begin
                ax.axhline(given - 0.5, color='red', linewidth=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if pixels:
    try:
        data = load_data(meta['dataset'], sys_, prepare=False)
    except ValueError as e:
        configurator.fail(str(e))
    shape = tuple(data.meta.get('image_shape', (28, 28)))
    n_pix, half = math.prod(shape), shape[0] // 2 * math.prod(shape[1:])  # the top half: whole rows
    n_val = len(data.val) // n_pix
    if n_val < 2:
        configurator.fail(f"{meta['dataset']} has {n_val} held-out images; sampling needs at least 2")
    pick = torch.randint(n_val - 1, (num_samples,), generator=torch.Generator().manual_seed(seed))
    a = torch.from_numpy(np.stack([data.val[i * n_pix:(i + 1) * n_pix] for i in pick.tolist()]).astype(np.int64))
    b = torch.from_numpy(np.stack([data.val[(i + 1) * n_pix:(i + 2) * n_pix] for i in pick.tolist()]).astype(np.int64))
    path = png or os.path.join(out_dir if not ckpt else os.path.dirname(ckpt) or '.', 'samples.png')
    if os.path.isdir(os.path.dirname(path) or '.'):
        check_writable(os.path.dirname(path) or '.', f"png={path}")  # before generating, not after
    try:
        with torch.no_grad(), sys_['ctx']:
            a, b = a.to(sys_['device']), b.to(sys_['device'])
            drawn = generate_all(read(a), n_pix)  # a held-out image sets the raster phase, then a whole new image
            completed = generate_all(read(torch.cat([a, b[:, :half]], 1)), n_pix - half)
    except KeyboardInterrupt:
        print("interrupted: stopped before the image grid was drawn, nothing written", file=sys.stderr)
        sys.exit(130)
    completions = [b[i, :half].tolist() + completed[i] for i in range(num_samples)]
    draw_images([('generated', drawn, None), ('held-out', b.cpu().tolist(), None),
                 ('completed from the top half', completions, shape[0] // 2)], shape, path)
    print(f"wrote {path}: {num_samples} generated images and {num_samples} completions of held-out half images "
          f"({shape[0]}x{shape[1]} pixels, {meta['dataset']})")
    sys.exit(0)

# text: one sample at a time, each token printed as it is made (bytes that end mid-character wait for the rest)
x = torch.tensor(prompt, dtype=torch.long, device=sys_['device'])[None]
sample = made = 0
try:
    with torch.no_grad(), sys_['ctx']:
        for sample in range(num_samples):
            utf8 = codecs.getincrementaldecoder('utf-8')(errors='replace')
            sys.stdout.write(start)
            made = 0
            for (t,) in generate(read(x), max_new_tokens):
                sys.stdout.write(utf8.decode(token_bytes(t)))
                sys.stdout.flush()
                made += 1
            print(utf8.decode(b'', final=True))
            print('---------------', flush=True)
except KeyboardInterrupt:  # Ctrl-C: what was made is on the screen already
    print(flush=True)
    print(f"interrupted: stopped in sample {sample + 1} of {num_samples} after {made} of {max_new_tokens} tokens "
          f"(printed above)", file=sys.stderr)
    sys.exit(130)
