"""sample.py generates from a checkpoint with the RNN alone, and rejects bad prompts clearly."""
from conftest import run, user_error


def test_sample_from_initial_memory_from_a_prompt_and_seeded_by_the_encoder(tiny_ckpt):
    p = run(['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=2', '--max_new_tokens=40'])
    samples = p.stdout.split('---------------\n')[:-1]
    assert len(samples) == 2 and all(len(s.encode()) >= 40 for s in samples)
    # with a prompt, by the RNN reading it and by the encoder: the prompt (printed as given) and 20 new bytes
    for extra in ([], ['--seed_with_encoder=True']):
        p = run(['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=1', '--max_new_tokens=20', '--start=abc ab']
                + extra)
        assert len(p.stdout.split('\n---------------\n')[0]) == len('abc ab') + 20, p.stdout


def test_sample_is_reproducible(tiny_ckpt):
    args = ['sample.py', f'--out_dir={tiny_ckpt}', '--num_samples=1', '--max_new_tokens=30', '--seed=7']
    assert run(args).stdout == run(args).stdout


def test_sample_bad_input(tiny_ckpt, tmp_path):
    # the tiny dataset's vocabulary is ASCII (128): 'é' is two bytes outside it
    assert 'outside this model' in user_error(['sample.py', f'--out_dir={tiny_ckpt}', '--start=caf\u00e9'])
    assert 'no checkpoint' in user_error(['sample.py', f'--out_dir={tmp_path}'])
