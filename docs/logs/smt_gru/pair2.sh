cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/wt21/train_smt.py --backbone=gru --hidden=256 --n_rnn_layer=2 --out_dir=gru2-smt --init_from=scratch --overwrite=True > gru2-smt.log 2>&1 && python /work/wt21/train_dmt.py --init_from=gru2-smt/ckpt.pt --out_dir=gru2-dmt > gru2-dmt.log 2>&1) &
python /work/wt21/train_bptt.py /work/wt21/config/shakespeare_gru.py --batch_size=4 --out_dir=gru-bptt-b4 --init_from=scratch --overwrite=True > gru-bptt-b4.log 2>&1 &
wait
