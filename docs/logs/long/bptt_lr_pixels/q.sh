# BPTT of the pixel RNN at lr 1e-3 (the config's 2e-3 halved), seeds 7-12, two runs side by side at one thread each
cd /work/main
export OMP_NUM_THREADS=1
R=/work/runs/e7
for P in "7 8" "9 10" "11 12"; do
  set -- $P
  echo "$(date -u +%T) start $1 $2" >> $R/queue.txt
  python train_bptt.py config/fashion_mnist_bptt.py --seed=$1 --learning_rate=1e-3 --out_dir=$R/s$1-bptt1e3 > $R/s$1-bptt1e3.log 2>&1 &
  python train_bptt.py config/fashion_mnist_bptt.py --seed=$2 --learning_rate=1e-3 --out_dir=$R/s$2-bptt1e3 > $R/s$2-bptt1e3.log 2>&1
  wait
  echo "$(date -u +%T) end $1 $2" >> $R/queue.txt
done
C=""; for S in 7 8 9 10 11 12; do C="$C,$R/s$S-bptt1e3/ckpt.pt"; done
(time python eval.py --ckpt=${C#,} --L=784 --n_buckets=28 --n_seqs=64 --json=$R/eval_pix_e7.json) > $R/eval_pix_e7.log 2>&1
touch $R/done
