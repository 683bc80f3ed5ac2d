"""
MNIST as 8-bit pixel tokens: train.bin / val.bin (uint16, 784 tokens per 28x28 image, raster scan, the 60,000 train
and 10,000 test images) and meta.json in this folder. Bits per pixel is then the ordinary bits/token.

    python data/mnist/prepare.py                  # downloads the four-file IDX release (needs internet)
    python data/mnist/prepare.py --source=DIR     # or a folder with the IDX files (.gz or not)

Offline: drop train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz into data/mnist/raw/ (no package carries
MNIST). Idempotent.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from data.idx import prepare_images  # noqa: E402

FOLDERS = []  # only <out_dir>/raw/, which prepare_images always looks in
# mirrors of the original release (yann.lecun.com often refuses scripted downloads), first that answers wins
URLS = ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/']

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', default=None, help='a folder holding train-images-idx3-ubyte[.gz] and t10k-images-...')
    p.add_argument('--out_dir', default=HERE)
    args = p.parse_args()
    prepare_images(args.out_dir, FOLDERS, URLS, args.source)
