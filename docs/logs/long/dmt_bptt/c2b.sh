cd /work/main; export OMP_NUM_THREADS=1; R=/work/runs/d4
H="--bptt=True --ce_through_state=True --learning_rate=1e-3"
while pgrep -f core2.sh >/dev/null; do sleep 5; done
for X in A:1337 B:2 D:3; do N=${X%%:*}; S=${X##*:}
  python train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/$N-smt/ckpt.pt --seed=$S $H --out_dir=$R/$N-h10 > $R/$N-h10.log 2>&1
done
touch $R/bar2; while [ ! -e $R/bar1 ]; do sleep 2; done
python train_dmt.py config/probe_dmt.py --init_from=$R/cs/ckpt.pt $H --max_time=480 --max_iters=100000 --out_dir=$R/cs-h > $R/cs-h.log 2>&1
python train_bptt.py config/fashion_mnist_bptt.py --seed=1337 --out_dir=$R/A-bptt > $R/A-bptt.log 2>&1
for X in A:1337 B:2 D:3; do N=${X%%:*}; S=${X##*:}
  python train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/$N-smt/ckpt.pt --seed=$S $H --w_mse=0 --out_dir=$R/$N-h0 > $R/$N-h0.log 2>&1
done
touch $R/done2
