#!/bin/bash
# Exp2 OVS only: No linux bridge: each container's host-side veth is a port of OVS br0, which carries the tunnel.
# Exported by `containet scenario export`; run as root on a lab that is up.
set -euo pipefail

# 1. [host1] OVS bridge br0
#    The only bridge on this host: containers and the tunnel are all ports of this Open vSwitch bridge (userspace datapath).
ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev external_ids:containet=test
ip link set br0 up

# 2. [host1] GRE port gre0 on br0 -> 10.0.0.4
#    Wraps the containers' Ethernet frames in GRE to the other host (10.0.0.4), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0 -- set interface gre0 type=gre options:remote_ip=10.0.0.4

# 3. [host2] OVS bridge br0
#    The only bridge on this host: containers and the tunnel are all ports of this Open vSwitch bridge (userspace datapath).
ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev external_ids:containet=test
ip link set br0 up

# 4. [host2] GRE port gre0 on br0 -> 10.0.0.3
#    Wraps the containers' Ethernet frames in GRE to the other host (10.0.0.3), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0 -- set interface gre0 type=gre options:remote_ip=10.0.0.3

# 5. [host1] docker run h1-a --net=none
#    A container on host1 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h1-a --label containet=test --label containet.host=host1 --label containet.name=h1-a containet/busybox:latest sleep 2147483647

# 6. [host1] docker run h1-b --net=none
#    A container on host1 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h1-b --label containet=test --label containet.host=host1 --label containet.name=h1-b containet/busybox:latest sleep 2147483647

# 7. [host2] docker run h2-a --net=none
#    A container on host2 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h2-a --label containet=test --label containet.host=host2 --label containet.name=h2-a containet/busybox:latest sleep 2147483647

# 8. [host2] docker run h2-b --net=none
#    A container on host2 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h2-b --label containet=test --label containet.host=host2 --label containet.name=h2-b containet/busybox:latest sleep 2147483647

# 9. [host1] wire h1-a 172.15.42.100/24 to OVS br0
#    A veth pair: eth0 inside with 172.15.42.100/24, the other end becomes a port of br0. The seed still adds a default route via 172.15.42.1, which no one owns in this experiment: the subnet itself is reachable, the outside is not. MTU 1462 fits the tunnel. Checksum offload is turned off inside: OVS's userspace datapath would forward TCP segments with their checksum never filled in (ping works, TCP dies).
ip link add cn-h1-a mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h1-a)
ip netns exec h1-a ip addr add 172.15.42.100/24 dev eth0
ip netns exec h1-a ip link set eth0 up
ip netns exec h1-a ip route add default via 172.15.42.1
ip netns exec h1-a ethtool -K eth0 tx off
ovs-vsctl add-port br0 cn-h1-a
ip link set cn-h1-a alias containet:test up

# 10. [host1] wire h1-b 172.15.42.102/24 to OVS br0
#    A veth pair: eth0 inside with 172.15.42.102/24, the other end becomes a port of br0. The seed still adds a default route via 172.15.42.1, which no one owns in this experiment: the subnet itself is reachable, the outside is not. MTU 1462 fits the tunnel. Checksum offload is turned off inside: OVS's userspace datapath would forward TCP segments with their checksum never filled in (ping works, TCP dies).
ip link add cn-h1-b mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h1-b)
ip netns exec h1-b ip addr add 172.15.42.102/24 dev eth0
ip netns exec h1-b ip link set eth0 up
ip netns exec h1-b ip route add default via 172.15.42.1
ip netns exec h1-b ethtool -K eth0 tx off
ovs-vsctl add-port br0 cn-h1-b
ip link set cn-h1-b alias containet:test up

# 11. [host2] wire h2-a 172.15.42.101/24 to OVS br0
#    A veth pair: eth0 inside with 172.15.42.101/24, the other end becomes a port of br0. The seed still adds a default route via 172.15.42.1, which no one owns in this experiment: the subnet itself is reachable, the outside is not. MTU 1462 fits the tunnel. Checksum offload is turned off inside: OVS's userspace datapath would forward TCP segments with their checksum never filled in (ping works, TCP dies).
ip link add cn-h2-a mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h2-a)
ip netns exec h2-a ip addr add 172.15.42.101/24 dev eth0
ip netns exec h2-a ip link set eth0 up
ip netns exec h2-a ip route add default via 172.15.42.1
ip netns exec h2-a ethtool -K eth0 tx off
ovs-vsctl add-port br0 cn-h2-a
ip link set cn-h2-a alias containet:test up

# 12. [host2] wire h2-b 172.15.42.103/24 to OVS br0
#    A veth pair: eth0 inside with 172.15.42.103/24, the other end becomes a port of br0. The seed still adds a default route via 172.15.42.1, which no one owns in this experiment: the subnet itself is reachable, the outside is not. MTU 1462 fits the tunnel. Checksum offload is turned off inside: OVS's userspace datapath would forward TCP segments with their checksum never filled in (ping works, TCP dies).
ip link add cn-h2-b mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h2-b)
ip netns exec h2-b ip addr add 172.15.42.103/24 dev eth0
ip netns exec h2-b ip link set eth0 up
ip netns exec h2-b ip route add default via 172.15.42.1
ip netns exec h2-b ethtool -K eth0 tx off
ovs-vsctl add-port br0 cn-h2-b
ip link set cn-h2-b alias containet:test up
