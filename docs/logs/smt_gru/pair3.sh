cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/wt21/train_smt.py --token_shift=True --out_dir=ts-smt --init_from=scratch --overwrite=True > ts-smt.log 2>&1 && python /work/wt21/train_dmt.py --init_from=ts-smt/ckpt.pt --out_dir=ts-dmt > ts-dmt.log 2>&1) &
(python /work/wt21/train_smt.py --out_dir=base-smt --init_from=scratch --overwrite=True > base-smt.log 2>&1 && python /work/wt21/train_dmt.py --init_from=base-smt/ckpt.pt --out_dir=base-dmt > base-dmt.log 2>&1) &
wait
