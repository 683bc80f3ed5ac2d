# detached DMT (config/fashion_mnist_dmt.py as it is) from the same six SMT checkpoints, two side by side at one thread
cd /work/main; export OMP_NUM_THREADS=1; R=/work/runs/e5
for pair in "1337 2" "3 4" "5 6"; do
  set -- $pair
  for S in $1 $2; do python train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/s$S-smt/ckpt.pt --seed=$S --out_dir=$R/s$S-dmt > $R/s$S-dmt.log 2>&1 & done
  wait; echo "$(date -u +%T) pair $1 $2 done" >> $R/queue.txt
done
C=""; for S in 1337 2 3 4 5 6; do C="$C,$R/s$S-dmt/ckpt.pt,$R/s$S-h10/ckpt.pt"; done
(time python eval.py --ckpt=${C#,} --L=784 --n_buckets=28 --n_seqs=64 --json=$R/eval_pix_dmt_e5.json) > $R/eval_pix_dmt_e5.log 2>&1
touch $R/qd_done
