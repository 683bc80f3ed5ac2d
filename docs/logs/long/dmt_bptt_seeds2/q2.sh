source /work/runs/e6/lib.sh
for S in 7 8 9 10 11 12; do
  barrier p$S q2 q1
  run s$S-bptt train_bptt.py config/fashion_mnist_bptt.py --seed=$S
  filler_until p$S q2 $R/smt_$S   # the SMT checkpoint for the rollout-length run beside DMT
  run s$S-r256 train_dmt.py config/fashion_mnist_dmt.py --init_from=$R/s$S-smt/ckpt.pt --seed=$S --rollout_len=256 --batch_size=8
  finish p$S q2 q1
done
touch $R/done2
