"""
Generate with a trained RNN alone: readout -> sample -> step, O(1) time and memory per token.

    python sample.py                                   # from out-shakespeare/ckpt.pt, starting from the RNN's own initial memory
    python sample.py --start="ROMEO:" --num_samples=2  # the RNN reads the prompt itself, then continues
    python sample.py --start=FILE:prompt.txt
    python sample.py --seed_with_encoder=True --start="..."  # the reference mode: the teacher encodes the prompt
"""
import sys

import torch

import configurator
from common import load_checkpoint, setup_system
from model import RNN, RNNConfig

out_dir = 'out-shakespeare'
ckpt = ''  # a checkpoint file; default out_dir/ckpt.pt
start = ''  # prompt text, or FILE:path; empty: start from the RNN's learned initial memory
num_samples = 3
max_new_tokens = 500
temperature = 0.8
top_k = 200  # 0: no top-k filtering
seed = 1337
device = 'cpu'
dtype = 'float32'
seed_with_encoder = False
configurator.load(globals(), sys.argv[1:])

sys_ = setup_system(device, dtype, seed)
ck = load_checkpoint(ckpt or f"{out_dir}/ckpt.pt")
meta = ck.get('meta', {})
vocab_size, tokenizer = ck['rnn_args']['vocab_size'], meta.get('tokenizer', 'bytes')
rnn = RNN(RNNConfig(**ck['rnn_args']))
rnn.load_state_dict(ck['rnn'])
rnn.to(sys_['device']).eval()

if tokenizer == 'gpt2':
    import tiktoken
    enc = tiktoken.get_encoding('gpt2')
    encode, decode = enc.encode_ordinary, enc.decode
else:
    encode = lambda s: list(s.encode('utf-8'))
    decode = lambda ids: bytes(ids).decode('utf-8', errors='replace')

if start.startswith('FILE:'):
    with open(start[5:], encoding='utf-8') as f:
        start = f.read()
prompt = encode(start)
bad = sorted({t for t in prompt if t >= vocab_size})
if bad:
    configurator.fail(f"the prompt has tokens {bad[:5]} outside this model's vocabulary of {vocab_size} "
                      f"({meta.get('dataset', '?')}); use characters the training data has")
if seed_with_encoder and 'teacher' not in ck:
    configurator.fail("seed_with_encoder=True needs a checkpoint with a teacher (an SMT checkpoint)")

with torch.no_grad(), sys_['ctx']:
    x = torch.tensor(prompt, dtype=torch.long, device=sys_['device'])[None].expand(num_samples, -1)
    if seed_with_encoder:
        # the reference protocol: the teacher encodes the last Tc prompt tokens into the first memory
        from encoder import Teacher, TeacherConfig
        teacher = Teacher(TeacherConfig(**ck['teacher_args']))
        teacher.load_state_dict(ck['teacher'])
        teacher.to(sys_['device']).eval()
        Tc = teacher.cfg.context_len
        past = x[:, -Tc:]
        n = torch.full((num_samples,), past.size(1), device=sys_['device'])
        m = teacher.encode(torch.nn.functional.pad(past, (Tc - past.size(1), 0)), n)
    else:
        m = rnn.initial_memory(num_samples)
        if x.size(1):
            m = rnn.run(m, x)[:, -1]  # the RNN reads the prompt on its own
    out = [[] for _ in range(num_samples)]
    for _ in range(max_new_tokens):
        logits = rnn.logits(m).float() / temperature
        if top_k:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float('inf')
        nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)[:, 0]
        m = rnn.step(m, nxt)
        for i, t in enumerate(nxt.tolist()):
            out[i].append(t)

for i in range(num_samples):
    print(start + decode(out[i]))
    print('---------------')
