while pgrep -f pair1.sh > /dev/null; do sleep 5; done
bash /work/runs/g/pair2.sh
bash /work/runs/g/pair3.sh
bash /work/runs/g/pair4.sh
