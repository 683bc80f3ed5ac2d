cd /work/runs/e5
while [ ! -f done1 ] || [ ! -f done2 ]; do sleep 5; done
cd /work/main
R=/work/runs/e5
C=""; for S in 1337 2 3 4 5 6; do C="$C,$R/s$S-smt/ckpt.pt,$R/s$S-h10/ckpt.pt,$R/s$S-bptt/ckpt.pt"; done
C="${C#,},$R/g1337-smt/ckpt.pt,$R/g1337-h10/ckpt.pt,$R/g1337-bptt/ckpt.pt"
(time python eval.py --ckpt=$C --L=784 --n_buckets=28 --n_seqs=64 --json=$R/eval_pix_e5.json) > $R/eval_pix_e5.log 2>&1
(time python eval.py --ckpt=$R/cs/ckpt.pt,$R/cs-h2e3/ckpt.pt --n_seqs=512 --json=$R/eval_copy_e5.json) > $R/eval_copy_e5.log 2>&1
touch $R/evals_done
