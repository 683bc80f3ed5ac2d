while pgrep -f "pytest" > /dev/null; do sleep 3; done
cd /work/runs/g
export OMP_NUM_THREADS=1
(python /work/main/train_smt.py --backbone=lstm --hidden=256 --n_rnn_layer=1 --out_dir=lstm1-smt --init_from=scratch --overwrite=True > lstm1-smt.log 2>&1 && python /work/main/train_dmt.py --init_from=lstm1-smt/ckpt.pt --out_dir=lstm1-dmt > lstm1-dmt.log 2>&1) &
(python /work/main/train_smt.py --backbone=lstm --hidden=128 --n_rnn_layer=2 --out_dir=lstm2-smt --init_from=scratch --overwrite=True > lstm2-smt.log 2>&1 && python /work/main/train_dmt.py --init_from=lstm2-smt/ckpt.pt --out_dir=lstm2-dmt > lstm2-dmt.log 2>&1) &
wait
python /work/main/eval.py --L=1024 --n_seqs=64 --ckpt=lstm1-smt/ckpt.pt,lstm1-dmt/ckpt.pt,lstm2-smt/ckpt.pt,lstm2-dmt/ckpt.pt > eval6.log 2>&1
