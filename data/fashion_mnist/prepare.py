"""
Fashion-MNIST as 8-bit pixel tokens: train.bin / val.bin (uint16, 784 tokens per 28x28 image, raster scan, the 60,000
train and 10,000 test images) and meta.json in this folder. Bits per pixel is then the ordinary bits/token.

    apt-get install -y dataset-fashion-mnist      # the offline source: /usr/share/datasets/fashion-mnist/
    python data/fashion_mnist/prepare.py
    python data/fashion_mnist/prepare.py --source=DIR   # a folder with the IDX files (.gz or not)

Source, in order: --source, the Debian package, IDX files dropped into data/fashion_mnist/raw/, else a download
for users with internet. Idempotent.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from data.idx import prepare_images  # noqa: E402

FOLDERS = ['/usr/share/datasets/fashion-mnist']  # then <out_dir>/raw/
URLS = ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/']

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', default=None, help='a folder holding train-images-idx3-ubyte[.gz] and t10k-images-...')
    p.add_argument('--out_dir', default=HERE)
    args = p.parse_args()
    prepare_images(args.out_dir, FOLDERS, URLS, args.source)
