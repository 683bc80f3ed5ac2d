cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/wt21/train_smt.py --backbone=gru --hidden=512 --n_rnn_layer=1 --out_dir=gru1-smt --init_from=scratch --overwrite=True > gru1-smt.log 2>&1 && python /work/wt21/train_dmt.py --init_from=gru1-smt/ckpt.pt --out_dir=gru1-dmt > gru1-dmt.log 2>&1) &
python /work/wt21/train_bptt.py /work/wt21/config/shakespeare_gru.py --out_dir=gru-bptt --init_from=scratch --overwrite=True > gru-bptt.log 2>&1 &
wait
