source /work/runs/e6/lib.sh
for S in 7 8 9 10 11 12; do
  barrier p$S q1 q2
  run s$S-smt train_smt.py config/fashion_mnist.py --seed=$S
  touch $R/smt_$S
  run s$S-h10 train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/s$S-smt/ckpt.pt --seed=$S
  finish p$S q1 q2
done
touch $R/done1
