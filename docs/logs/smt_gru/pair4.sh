cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/wt21/train_smt.py /work/wt21/config/shakespeare_smt_gru.py --seed=2 --out_dir=gru1-smt-s2 --init_from=scratch --overwrite=True > gru1-smt-s2.log 2>&1 && python /work/wt21/train_dmt.py --seed=2 --init_from=gru1-smt-s2/ckpt.pt --out_dir=gru1-dmt-s2 > gru1-dmt-s2.log 2>&1) &
python /work/wt21/train_bptt.py /work/wt21/config/shakespeare_gru.py --batch_size=4 --seed=2 --out_dir=gru-bptt-s2 --init_from=scratch --overwrite=True > gru-bptt-s2.log 2>&1 &
wait
