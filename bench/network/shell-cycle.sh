#!/bin/sh
# The peer of crates/containerization/examples/network_cycle.rs: the same
# network setup and teardown, N times, with ip and nft commands, as a shell
# script a user would write. Per container it creates a tap, attaches it and
# sets its MAC, adds the published port as an element of the same DNAT map
# ours uses (one nft command), then deletes both. It does not pool taps, as
# ours does: a shell user creates and deletes a tap per container.
# Run in a scratch namespace: unshare --net.
set -e
cycles=${1:-20}
ip link add cz-bench type bridge
ip addr add 10.66.0.1/24 dev cz-bench
ip link set cz-bench up
echo 1 >/proc/sys/net/ipv4/ip_forward
nft -f - <<'RULES'
table inet containerization {
  map published_tcp { type inet_service : ipv4_addr . inet_service; }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local dnat ip to tcp dport map @published_tcp; }
  chain output { type nat hook output priority -100; policy accept;
    fib daddr type local dnat ip to tcp dport map @published_tcp; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.66.0.0/24 ip daddr != 10.66.0.0/24 masquerade; }
  chain forward { type filter hook forward priority filter; policy accept;
    iifname "cz-bench" accept; oifname "cz-bench" accept; }
}
RULES
i=0
while [ "$i" -lt "$cycles" ]; do
  ip tuntap add dev czt-bench mode tap vnet_hdr
  ip link set czt-bench address 02:00:00:00:00:01 master cz-bench up
  nft add element inet containerization published_tcp '{ 8080 : 10.66.0.2 . 80 }'
  nft delete element inet containerization published_tcp '{ 8080 : 10.66.0.2 . 80 }'
  ip link del czt-bench
  i=$((i + 1))
done
ip link del cz-bench
nft delete table inet containerization
