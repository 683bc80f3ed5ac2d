source /work/runs/e5/lib.sh
barrier p0 q1 q2
run cs train_smt.py config/probe_copy.py
run cs-h2e3 train_dmt.py config/probe_dmt.py --init_from=$R/cs/ckpt.pt --bptt=True --ce_through_state=True --learning_rate=2e-3 --max_time=480 --max_iters=100000
finish p0 q1 q2
for S in 1337 2 3 4 5 6; do
  barrier p$S q1 q2
  run s$S-smt train_smt.py config/fashion_mnist.py --seed=$S
  run s$S-h10 train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/s$S-smt/ckpt.pt --seed=$S --bptt=True --ce_through_state=True --learning_rate=1e-3
  finish p$S q1 q2
done
touch $R/done1
