source /work/runs/e5/lib.sh
barrier p0 q2 q1
run g1337-bptt train_bptt.py config/fashion_mnist_bptt.py --backbone=gru --seed=1337
run g1337-smt train_smt.py config/fashion_mnist.py --backbone=gru --seed=1337
run g1337-h10 train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/g1337-smt/ckpt.pt --seed=1337 --bptt=True --ce_through_state=True --learning_rate=1e-3
finish p0 q2 q1
for S in 1337 2 3 4 5 6; do
  barrier p$S q2 q1
  run s$S-bptt train_bptt.py config/fashion_mnist_bptt.py --seed=$S
  finish p$S q2 q1
done
touch $R/done2
