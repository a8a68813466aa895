#!/bin/sh
# Starts the etcd cluster that kv-example is compared with (README, "Compare it with
# etcd"): three members on 127.0.0.1, clients on 22379, 23379 and 24379 (peers on the
# next port up), data in DIR, fsync on (etcd's default). Prints which member leads;
# point wrk-table.sh at that one. Stop them with: kill $(cat DIR/pids)
# Usage: etcd-cluster.sh DIR   (Debian: apt-get install etcd-server etcd-client)
set -eu
dir=$1
rm -rf "$dir"
mkdir -p "$dir"
cluster="e1=http://127.0.0.1:22380,e2=http://127.0.0.1:23380,e3=http://127.0.0.1:24380"
for i in 1 2 3; do
    port=$((21379 + i * 1000))
    etcd --name "e$i" --data-dir "$dir/e$i" \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
        > "$dir/e$i.log" 2>&1 &
    echo $! >> "$dir/pids"
done
sleep 5
ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:22379,127.0.0.1:23379,127.0.0.1:24379 \
    endpoint status -w table
