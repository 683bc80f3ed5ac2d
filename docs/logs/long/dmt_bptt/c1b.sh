cd /work/main; export OMP_NUM_THREADS=1; R=/work/runs/d4
while pgrep -f core1.sh >/dev/null; do sleep 5; done
for X in A:1337 B:2 D:3; do N=${X%%:*}; S=${X##*:}
  python train_bptt.py config/fashion_mnist_ft.py --init_from=$R/$N-smt/ckpt.pt --seed=$S --out_dir=$R/$N-ft > $R/$N-ft.log 2>&1
done
touch $R/bar1; while [ ! -e $R/bar2 ]; do sleep 2; done
python train_bptt.py config/probe_bptt.py --init_from=$R/cs/ckpt.pt --backbone=gru --n_rnn_layer=1 --seed=2 --learning_rate=1e-3 --max_time=480 --max_iters=1000000 --out_dir=$R/cs-ft8 > $R/cs-ft8.log 2>&1
python train_bptt.py config/fashion_mnist_bptt.py --seed=2 --out_dir=$R/B-bptt > $R/B-bptt.log 2>&1
python train_bptt.py config/fashion_mnist_bptt.py --seed=3 --out_dir=$R/D-bptt > $R/D-bptt.log 2>&1
touch $R/done1
