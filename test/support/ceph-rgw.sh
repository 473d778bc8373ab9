#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway (real S3) for the tests, on 127.0.0.1 only.
#   ceph-rgw.sh start DIR S3_PORT MON_PORT ACCESS_KEY SECRET_KEY    prints "ready" when S3 answers
#   ceph-rgw.sh stop DIR
# Needs Debian's ceph-mon ceph-osd radosgw ceph-common. One monitor, one OSD (bluestore on a sparse
# file, not memstore, which would keep every byte in RAM), pool size 1, no cephx.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?dir}

stop() {
  for daemon in rgw osd mon; do
    [ -f "$dir/$daemon.pid" ] && kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
  done
  for daemon in rgw osd mon; do
    [ -f "$dir/$daemon.pid" ] || continue
    pid=$(cat "$dir/$daemon.pid")
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$daemon.pid"
  done
}

# Retries a command every 0.1 s, at most N times.
retry() {
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "ceph-rgw: gave up waiting for: $*" >&2
  return 1
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

s3_port=${3:?s3 port}; mon_port=${4:?mon port}; access=${5:?access key}; secret=${6:?secret key}
stop
rm -rf "$dir"; mkdir -p "$dir"/{run,log,mon,osd/ceph-0}
fsid=$(cat /proc/sys/kernel/random/uuid)
# Messenger ports: a window of 60 above the monitor's own two.
cat > "$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_port_min = $((mon_port + 2))
ms_bind_port_max = $((mon_port + 62))
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without this radosgw never finishes connecting to the monitor.
ms_mon_client_mode = crc secure
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_path = $dir/osd/block
bluestore_block_create = true
bluestore_block_size = 32212254720
bluestore_fsck_on_mkfs = false
osd_memory_target = 939524096
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
# Fast monitor decisions: startup in seconds instead of ~12.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[client.rgw.test]
# tcp_nodelay: otherwise every small GET waits ~45 ms.
rgw_frontends = beast endpoint=127.0.0.1:$s3_port tcp_nodelay=1
rgw_dns_name = s3.test
CONF
conf=(-c "$dir/ceph.conf")
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]" "$dir/monmap" >/dev/null
ceph-mon "${conf[@]}" --mkfs -i a --monmap "$dir/monmap"
ceph-mon "${conf[@]}" -i a -f >"$dir/log/mon.out" 2>&1 & echo $! > "$dir/mon.pid"
retry 150 ceph "${conf[@]}" --connect-timeout 2 mon stat
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
ceph "${conf[@]}" osd new "$osd_uuid" >/dev/null
ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1
ceph-osd "${conf[@]}" -i 0 -f >"$dir/log/osd.out" 2>&1 & echo $! > "$dir/osd.pid"
retry 300 bash -c "ceph ${conf[*]} osd stat | grep -q '1 up'"
radosgw "${conf[@]}" -n client.rgw.test -f >"$dir/log/rgw.out" 2>&1 & echo $! > "$dir/rgw.pid"
retry 300 curl -sf "http://127.0.0.1:$s3_port/"
radosgw-admin "${conf[@]}" user create --uid=enlil-tests --display-name=enlil-tests --access-key="$access" --secret-key="$secret" >/dev/null
echo ready
