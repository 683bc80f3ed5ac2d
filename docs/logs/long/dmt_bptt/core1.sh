cd /work/main
export OMP_NUM_THREADS=1
R=/work/runs/d4
python train_smt.py config/probe_copy.py --out_dir=$R/cs > $R/cs.log 2>&1
