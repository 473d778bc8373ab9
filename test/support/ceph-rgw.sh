#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway (a real S3 server) for the tests, on 127.0.0.1 only.
#
#   ceph-rgw.sh start [DIR S3_PORT MON_PORT ACCESS_KEY SECRET_KEY]
#       starts it in DIR (wiped first) and prints the endpoint once S3 requests work
#   ceph-rgw.sh stop [DIR]
#       stops everything start started there; safe to repeat
#
# Arguments left out come from the environment, for starting one by hand:
#   RGW_DIR (/tmp/enlil-rgw)   RGW_PORT (17480, S3)   RGW_MON_PORT (17490: the monitor listens on it and
#   the next port, the OSD and radosgw bind within the 60 ports above)   RGW_ACCESS_KEY (test)
#   RGW_SECRET_KEY (testsecret)   RGW_DNS_NAME (s3.test: virtual-hosted requests go to <bucket>.s3.test)
#   RGW_WATCH_PID: when that process is gone (the test run was killed), stop and delete DIR.
#
# Needs Debian's ceph-mon ceph-osd radosgw ceph-common. One monitor, one OSD (bluestore on a sparse
# file, not memstore, which would keep every byte in RAM), pool size 1, no cephx. About 5 s to start.
set -euo pipefail

cmd=${1:-}
dir=${2:-${RGW_DIR:-/tmp/enlil-rgw}}
daemons=(rgw osd mon)

# The pid in DIR/NAME.pid, if that process still runs with this directory's configuration.
ours() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -e "$dir/" -e " $dir " && echo "$pid"
}

stop() {
  local pid
  # The data is thrown away: no clean shutdown needed, and SIGKILL takes no time.
  if pid=$(ours watch) && [ "$pid" != "$$" ]; then kill -9 -- "-$pid" 2>/dev/null || true; fi
  for d in "${daemons[@]}"; do
    if pid=$(ours "$d"); then kill -9 "$pid" 2>/dev/null || true; fi
  done
  for d in "${daemons[@]}" watch; do
    if pid=$(ours "$d") && [ "$pid" != "$$" ]; then
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -f "$dir/$d.pid"
  done
}

case "$cmd" in
  stop) stop; exit 0 ;;
  watch)
    # Internal: started by `start` in its own session, so that it outlives the test run.
    echo $$ >"$dir/watch.pid"
    while kill -0 "$3" 2>/dev/null; do sleep 1; done
    stop
    rm -rf "$dir"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 start [DIR S3_PORT MON_PORT ACCESS_KEY SECRET_KEY] | stop [DIR]" >&2; exit 2 ;;
esac

s3_port=${3:-${RGW_PORT:-17480}}
mon_port=${4:-${RGW_MON_PORT:-17490}}
access=${5:-${RGW_ACCESS_KEY:-test}}
secret=${6:-${RGW_SECRET_KEY:-testsecret}}
dns_name=${RGW_DNS_NAME:-s3.test}

for bin in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph curl timeout; do
  command -v "$bin" >/dev/null || { echo "ceph-rgw: $bin is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common curl)" >&2; exit 1; }
done

fail() {
  echo "ceph-rgw: $*" >&2
  for log in "$dir"/log/*.out; do
    [ -s "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
  done
  echo "(logs in $dir/log)" >&2
  stop
  exit 1
}

stop
rm -rf "$dir"
mkdir -p "$dir"/{run,log,mon,osd/ceph-0}
dir=$(cd "$dir" && pwd)

# The OSD's block file is sparse: it takes what is written, 10 GiB after the 5 GiB blob test.
free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((12 * 1024 * 1024)) ]; then
  echo "ceph-rgw: warning: only $((free_kib / 1024 / 1024)) GiB free in $dir; the big-blob tests need ~12 GiB" >&2
fi

fsid=$(cat /proc/sys/kernel/random/uuid)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
mon_addr="[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]"
cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = $mon_addr
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
# 30 GiB, sparse.
bluestore_block_size = 32212254720
bluestore_fsck_on_mkfs = false
# The block device's I/O thread polls this often; every close of the device waits for it (the
# default 250 ms makes the OSD's mkfs and start-up ~2 s slower).
bdev_aio_poll_ms = 20
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
# Fast monitor decisions: start-up in seconds instead of ~12.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[client.rgw.test]
# tcp_nodelay: otherwise every small GET waits ~45 ms.
rgw_frontends = beast endpoint=127.0.0.1:$s3_port tcp_nodelay=1
rgw_dns_name = $dns_name
CONF
conf=(-c "$dir/ceph.conf")

# Every step is bounded: `timeout` on the one-shot commands, a deadline on the waits.
timeout 10 monmaptool --create --fsid "$fsid" --addv a "$mon_addr" "$dir/monmap" >/dev/null || fail "monmaptool failed"
timeout 30 ceph-mon "${conf[@]}" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mon-mkfs.out" 2>&1 || fail "the monitor's mkfs failed"
ceph-mon "${conf[@]}" -i a -f >"$dir/log/mon.out" 2>&1 &
echo $! >"$dir/mon.pid"
# The OSD's store is made while the monitor starts: mkfs needs only the configuration.
timeout 60 ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1 &
mkfs_pid=$!
timeout 30 ceph "${conf[@]}" --connect-timeout 25 osd new "$osd_uuid" >/dev/null 2>"$dir/log/osd-new.out" || fail "the monitor did not register the OSD"
wait "$mkfs_pid" || fail "the OSD's mkfs failed"
ceph-osd "${conf[@]}" -i 0 -f >"$dir/log/osd.out" 2>&1 &
echo $! >"$dir/osd.pid"
# radosgw must start after the OSD is up: started earlier, its first requests wait for the
# client's 5 s tick. The OSD's log says when it is active; asking the monitor (a Python CLI, ~0.3 s a
# call) is the fallback, once a second.
deadline=$((SECONDS + 60))
for i in $(seq 100000); do
  grep -q 'state: booting -> active' "$dir/log/osd.0.log" 2>/dev/null && break
  if [ $((i % 50)) = 0 ] && timeout 10 ceph "${conf[@]}" --connect-timeout 5 osd stat 2>/dev/null | grep -q ' 1 up'; then break; fi
  for d in mon osd; do ours "$d" >/dev/null || fail "$d exited while starting"; done
  [ "$SECONDS" -lt "$deadline" ] || fail "the OSD was not up within 60 s"
  sleep 0.02
done
radosgw "${conf[@]}" -n client.rgw.test -f >"$dir/log/rgw.out" 2>&1 &
echo $! >"$dir/rgw.pid"
deadline=$((SECONDS + 60))
until curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$s3_port/"; do
  for d in "${daemons[@]}"; do ours "$d" >/dev/null || fail "$d exited while starting"; done
  [ "$SECONDS" -lt "$deadline" ] || fail "S3 did not answer on 127.0.0.1:$s3_port within 60 s"
  sleep 0.02
done
timeout 60 radosgw-admin "${conf[@]}" user create --uid=enlil-tests --display-name=enlil-tests \
  --access-key="$access" --secret-key="$secret" >/dev/null 2>"$dir/log/user-create.out" || fail "creating the S3 user failed"

if [ -n "${RGW_WATCH_PID:-}" ]; then
  setsid bash "$0" watch "$dir" "$RGW_WATCH_PID" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do [ -f "$dir/watch.pid" ] && break; sleep 0.01; done
fi
echo "http://127.0.0.1:$s3_port"
