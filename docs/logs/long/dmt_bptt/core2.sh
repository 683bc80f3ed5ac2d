cd /work/main
export OMP_NUM_THREADS=1
R=/work/runs/d4
python train_smt.py config/fashion_mnist.py --seed=1337 --out_dir=$R/A-smt > $R/A-smt.log 2>&1
python train_smt.py config/fashion_mnist.py --seed=2 --out_dir=$R/B-smt > $R/B-smt.log 2>&1
python train_smt.py config/fashion_mnist.py --seed=3 --out_dir=$R/D-smt > $R/D-smt.log 2>&1
