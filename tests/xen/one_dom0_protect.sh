#!/bin/bash
# Manual real-Xen scenario (not yet in the test command; issue 14): in ONE
# Dom0, a PVH test guest protected by one understudyd to another over
# loopback, then the primary "dies" (daemon killed, domain destroyed) and
# the backup activates its standby. Run from the repository root, after
# `scripts/build build` and `scripts/xen-guest build build/xen-guest`:
#   scripts/xen-in-qemu -- tests/xen/one_dom0_protect.sh
# docs/xen.md ("What has run on real Xen") records what it showed.
modprobe loop
ip link add xenbr0 type bridge && ip addr add 10.20.0.1/24 dev xenbr0 && ip link set xenbr0 up
cp build/xen-guest/disk.img /tmp/disk.img; loop=$(losetup -f --show /tmp/disk.img)
scripts/xen-guest config build/xen-guest web01 10.20.0.5/24 00:16:3e:00:00:05 --disk $loop --hotplug tests/xen/hotplug > /tmp/web01.cfg
s=$(date +%s); xl create -q /tmp/web01.cfg; echo "create took $(( $(date +%s)-s )) s"
for i in $(seq 120); do curl -s -m 2 http://10.20.0.5/counter >/dev/null && break; sleep 1; done
echo "guest answers after $(( $(date +%s)-s )) s: $(curl -s http://10.20.0.5/counter)"
head -c 32 /dev/urandom | xxd -p -c 64 > /tmp/key; chmod 600 /tmp/key
for n in a b; do
cat > /tmp/$n.conf <<CONF
[daemon]
node = xen-$n
control_socket = /tmp/$n.sock
state_dir = /tmp/state-$n
netbuf_setup = $PWD/scripts/netbuf-setup
[replication]
psk_file = /tmp/key
interval_ms = 200
$( [ $n = b ] && echo "listen = 127.0.0.1:7300" )
[guest web01]
backend = xen
xl_config = /tmp/web01.cfg
CONF
done
build/bin/understudyd --config /tmp/b.conf > /tmp/b.log 2>&1 &
build/bin/understudyd --config /tmp/a.conf > /tmp/a.log 2>&1 &
for i in $(seq 120); do [ -S /tmp/a.sock ] && [ -S /tmp/b.sock ] && break; sleep 1; done
echo "daemons up after $i s"; cat /tmp/a.log /tmp/b.log
s=$(date +%s)
build/bin/understudy protect web01 --peer 127.0.0.1:7300 --allow-unreplicated-disk --socket /tmp/a.sock
for i in $(seq 100); do build/bin/understudy status web01 --socket /tmp/a.sock 2>&1 | grep -q "protected" && break; pgrep -f 'understudyd --config /tmp/a.conf' >/dev/null || break; sleep 2; done
echo "protected after $(( $(date +%s)-s )) s"
for i in $(seq 20); do curl -s -m 5 http://10.20.0.5/counter | tr '\n' ' '; sleep 0.5; done; echo
build/bin/understudy status --socket /tmp/a.sock
build/bin/understudy status --socket /tmp/b.sock
build/bin/understudy events --socket /tmp/a.sock | tail -15
echo "== primary dies"
kill -9 $(pgrep -f "understudyd --config /tmp/a.conf"); xl destroy web01
s=$(date +%s)
build/bin/understudy debug activate web01 --socket /tmp/b.sock
echo "activate took $(( $(date +%s)-s )) s"
for i in $(seq 60); do v=$(curl -s -m 2 http://10.20.0.5/peek) && break; sleep 1; done
echo "after failover: peek=$v counter=$(curl -s -m 5 http://10.20.0.5/counter) disk=$(curl -s -m 5 http://10.20.0.5/disk)"
xl list
build/bin/understudy status --socket /tmp/b.sock
echo "== a.log"; tail -20 /tmp/a.log; echo "== b.log"; tail -30 /tmp/b.log
