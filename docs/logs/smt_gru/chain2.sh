while pgrep -f chain.sh > /dev/null; do sleep 5; done
bash /work/runs/g/pair4.sh
