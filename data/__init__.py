"""The data/ folder as a package, so that common.py can import data.synthetic and the prepare scripts data.idx
(a regular package: an installed module named `data` cannot shadow it)."""
