cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/wt21/train_smt.py /work/wt21/config/shakespeare_smt_gru.py --seed=3 --out_dir=gru1-smt-s3 --init_from=scratch --overwrite=True > gru1-smt-s3.log 2>&1 && python /work/wt21/train_dmt.py --seed=3 --init_from=gru1-smt-s3/ckpt.pt --out_dir=gru1-dmt-s3 > gru1-dmt-s3.log 2>&1) &
python /work/wt21/train_bptt.py /work/wt21/config/shakespeare_gru.py --batch_size=4 --seed=3 --out_dir=gru-bptt-s3 --init_from=scratch --overwrite=True > gru-bptt-s3.log 2>&1 &
wait
