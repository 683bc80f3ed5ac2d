cd /work/runs/e6
while [ ! -f done1 ] || [ ! -f done2 ]; do sleep 5; done
cd /work/main
R=/work/runs/e6
C=""; for S in 7 8 9 10 11 12; do C="$C,$R/s$S-smt/ckpt.pt,$R/s$S-h10/ckpt.pt,$R/s$S-r256/ckpt.pt,$R/s$S-bptt/ckpt.pt"; done
(time python eval.py --ckpt=${C#,} --L=784 --n_buckets=28 --n_seqs=64 --json=$R/eval_pix_e6.json) > $R/eval_pix_e6.log 2>&1
touch $R/evals_done
