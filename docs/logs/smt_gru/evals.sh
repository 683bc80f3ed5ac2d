while pgrep -f pair4.sh > /dev/null; do sleep 5; done
cd /work/runs/g
python /work/wt21/eval.py --L=1024 --n_seqs=64 --ckpt=gru1-smt/ckpt.pt,gru1-dmt/ckpt.pt,gru-bptt/ckpt.pt,gru2-smt/ckpt.pt,gru2-dmt/ckpt.pt,gru-bptt-b4/ckpt.pt,gru1-smt-s2/ckpt.pt,gru1-dmt-s2/ckpt.pt,gru-bptt-s2/ckpt.pt,base-smt/ckpt.pt,base-dmt/ckpt.pt,ts-smt/ckpt.pt,ts-dmt/ckpt.pt --json=eval.json > eval.log 2>&1
cd /work/runs/p
python /work/wt21/eval.py --ckpt=s12/ckpt.pt,s12d/ckpt.pt,s12b/ckpt.pt,s10/ckpt.pt,s10d/ckpt.pt --n_seqs=256 > needle_eval.log 2>&1
