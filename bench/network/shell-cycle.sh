#!/bin/sh
# The peer of crates/containerization/examples/network_cycle.rs: the same
# network setup and teardown, N times, with ip and nft commands, as a shell
# script a user would write, updating only the DNAT chains per container as
# ours does. Run in a scratch namespace: unshare --net.
set -e
cycles=${1:-20}
ip link add cz-bench type bridge
ip addr add 10.66.0.1/24 dev cz-bench
ip link set cz-bench up
echo 1 >/proc/sys/net/ipv4/ip_forward
ruleset() { # $1: extra DNAT rule or nothing
  cat <<RULES
table ip containerization
delete table ip containerization
table ip containerization {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; $1; }
  chain output { type nat hook output priority -100; policy accept; $1; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.66.0.0/24 ip daddr != 10.66.0.0/24 masquerade; }
  chain forward { type filter hook forward priority filter; policy accept;
    iifname "cz-bench" accept; oifname "cz-bench" accept; }
}
RULES
}
ruleset "" | nft -f -
i=0
while [ "$i" -lt "$cycles" ]; do
  ip tuntap add dev czt-bench mode tap vnet_hdr
  ip link set czt-bench address 02:00:00:00:00:01 master cz-bench up
  rule="fib daddr type local tcp dport 8080 dnat to 10.66.0.2:80"
  printf 'flush chain ip containerization prerouting\nflush chain ip containerization output\nadd rule ip containerization prerouting %s\nadd rule ip containerization output %s\n' "$rule" "$rule" | nft -f -
  ip link del czt-bench
  printf 'flush chain ip containerization prerouting\nflush chain ip containerization output\n' | nft -f -
  i=$((i + 1))
done
ip link del cz-bench
printf 'table ip containerization\ndelete table ip containerization\n' | nft -f -
