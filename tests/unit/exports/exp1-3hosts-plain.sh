#!/bin/bash
# Exp1 docker bridge + OVS: Containers on a linux bridge docker0; OVS br0 inside docker0 carries a tunnel to the other host.
# Exported by `containet scenario export`; run as root on a lab that is up.
set -euo pipefail

# 1. [host1] linux bridge docker0 172.15.42.1/24
#    Containers on host1 plug into a linux bridge, as docker does; it holds the host's address 172.15.42.1 in the container subnet.
ip link add docker0 type bridge
ip link set docker0 alias containet:test
ip addr add 172.15.42.1/24 dev docker0
ip link set docker0 up

# 2. [host1] OVS bridge br0
#    An Open vSwitch bridge to carry the tunnel (userspace datapath: this kernel has no OVS module).
ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev external_ids:containet=test
ip link set br0 up

# 3. [host1] GRE port gre0-host2 on br0 -> 10.0.0.4
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.4), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host2 -- set interface gre0-host2 type=gre options:remote_ip=10.0.0.4

# 4. [host1] GRE port gre0-host3 on br0 -> 10.0.0.5
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.5), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host3 -- set interface gre0-host3 type=gre options:remote_ip=10.0.0.5

# 5. [host1] RSTP on br0
#    A full mesh of tunnels is a layer-2 loop: broadcasts would circle forever. Rapid spanning tree blocks one path per loop (one setting in OVSDB, any number of hosts); the price is that blocked pairs talk through a third host.
ovs-vsctl set bridge br0 rstp_enable=true

# 6. [host1] put br0 into docker0
#    Plugging br0 into docker0 joins the two bridges: container frames now reach OVS and the tunnel.
ip link set br0 master docker0

# 7. [host1] NAT and FORWARD rules
#    The seed's iptables.sh: masquerade what leaves the subnet, accept forwarding through the bridge (each rule is marked 'containet' so undo removes exactly these).
iptables -t nat -A POSTROUTING -s 172.15.42.0/24 ! -d 172.15.42.0/24 -j MASQUERADE -m comment --comment containet:test
iptables -t filter -A FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 ! -o br0 -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 -o br0 -j ACCEPT -m comment --comment containet:test

# 8. [host2] linux bridge docker0 172.15.42.2/24
#    Containers on host2 plug into a linux bridge, as docker does; it holds the host's address 172.15.42.2 in the container subnet.
ip link add docker0 type bridge
ip link set docker0 alias containet:test
ip addr add 172.15.42.2/24 dev docker0
ip link set docker0 up

# 9. [host2] OVS bridge br0
#    An Open vSwitch bridge to carry the tunnel (userspace datapath: this kernel has no OVS module).
ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev external_ids:containet=test
ip link set br0 up

# 10. [host2] GRE port gre0-host1 on br0 -> 10.0.0.3
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.3), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host1 -- set interface gre0-host1 type=gre options:remote_ip=10.0.0.3

# 11. [host2] GRE port gre0-host3 on br0 -> 10.0.0.5
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.5), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host3 -- set interface gre0-host3 type=gre options:remote_ip=10.0.0.5

# 12. [host2] RSTP on br0
#    A full mesh of tunnels is a layer-2 loop: broadcasts would circle forever. Rapid spanning tree blocks one path per loop (one setting in OVSDB, any number of hosts); the price is that blocked pairs talk through a third host.
ovs-vsctl set bridge br0 rstp_enable=true

# 13. [host2] put br0 into docker0
#    Plugging br0 into docker0 joins the two bridges: container frames now reach OVS and the tunnel.
ip link set br0 master docker0

# 14. [host2] NAT and FORWARD rules
#    The seed's iptables.sh: masquerade what leaves the subnet, accept forwarding through the bridge (each rule is marked 'containet' so undo removes exactly these).
iptables -t nat -A POSTROUTING -s 172.15.42.0/24 ! -d 172.15.42.0/24 -j MASQUERADE -m comment --comment containet:test
iptables -t filter -A FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 ! -o br0 -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 -o br0 -j ACCEPT -m comment --comment containet:test

# 15. [host3] linux bridge docker0 172.15.42.3/24
#    Containers on host3 plug into a linux bridge, as docker does; it holds the host's address 172.15.42.3 in the container subnet.
ip link add docker0 type bridge
ip link set docker0 alias containet:test
ip addr add 172.15.42.3/24 dev docker0
ip link set docker0 up

# 16. [host3] OVS bridge br0
#    An Open vSwitch bridge to carry the tunnel (userspace datapath: this kernel has no OVS module).
ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev external_ids:containet=test
ip link set br0 up

# 17. [host3] GRE port gre0-host1 on br0 -> 10.0.0.3
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.3), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host1 -- set interface gre0-host1 type=gre options:remote_ip=10.0.0.3

# 18. [host3] GRE port gre0-host2 on br0 -> 10.0.0.4
#    Wraps the containers' Ethernet frames in GRE to a peer host (10.0.0.4), so the hosts share one layer-2 segment.
ovs-vsctl add-port br0 gre0-host2 -- set interface gre0-host2 type=gre options:remote_ip=10.0.0.4

# 19. [host3] RSTP on br0
#    A full mesh of tunnels is a layer-2 loop: broadcasts would circle forever. Rapid spanning tree blocks one path per loop (one setting in OVSDB, any number of hosts); the price is that blocked pairs talk through a third host.
ovs-vsctl set bridge br0 rstp_enable=true

# 20. [host3] put br0 into docker0
#    Plugging br0 into docker0 joins the two bridges: container frames now reach OVS and the tunnel.
ip link set br0 master docker0

# 21. [host3] NAT and FORWARD rules
#    The seed's iptables.sh: masquerade what leaves the subnet, accept forwarding through the bridge (each rule is marked 'containet' so undo removes exactly these).
iptables -t nat -A POSTROUTING -s 172.15.42.0/24 ! -d 172.15.42.0/24 -j MASQUERADE -m comment --comment containet:test
iptables -t filter -A FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 ! -o br0 -j ACCEPT -m comment --comment containet:test
iptables -t filter -A FORWARD -i br0 -o br0 -j ACCEPT -m comment --comment containet:test

# 22. [host1] docker run h1-a --net=none
#    A container on host1 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h1-a --label containet=test --label containet.host=host1 --label containet.name=h1-a containet/busybox:latest sleep 2147483647

# 23. [host1] docker run h1-b --net=none
#    A container on host1 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h1-b --label containet=test --label containet.host=host1 --label containet.name=h1-b containet/busybox:latest sleep 2147483647

# 24. [host2] docker run h2-a --net=none
#    A container on host2 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h2-a --label containet=test --label containet.host=host2 --label containet.name=h2-a containet/busybox:latest sleep 2147483647

# 25. [host2] docker run h2-b --net=none
#    A container on host2 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h2-b --label containet=test --label containet.host=host2 --label containet.name=h2-b containet/busybox:latest sleep 2147483647

# 26. [host3] docker run h3-a --net=none
#    A container on host3 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h3-a --label containet=test --label containet.host=host3 --label containet.name=h3-a containet/busybox:latest sleep 2147483647

# 27. [host3] docker run h3-b --net=none
#    A container on host3 with no network at all (--net=none): we wire it by hand, exactly as the seed does.
docker run -d --net=none --name cn-test-h3-b --label containet=test --label containet.host=host3 --label containet.name=h3-b containet/busybox:latest sleep 2147483647

# 28. [host1] wire h1-a 172.15.42.100/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.100/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls).
ip link add cn-h1-a mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h1-a)
ip netns exec h1-a ip addr add 172.15.42.100/24 dev eth0
ip netns exec h1-a ip link set eth0 up
ip netns exec h1-a ip route add default via 172.15.42.1
ip link set cn-h1-a master docker0
ip link set cn-h1-a alias containet:test up

# 29. [host1] wire h1-b 172.15.42.103/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.103/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls).
ip link add cn-h1-b mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h1-b)
ip netns exec h1-b ip addr add 172.15.42.103/24 dev eth0
ip netns exec h1-b ip link set eth0 up
ip netns exec h1-b ip route add default via 172.15.42.1
ip link set cn-h1-b master docker0
ip link set cn-h1-b alias containet:test up

# 30. [host2] wire h2-a 172.15.42.101/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.101/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls). As in the seed, the route points at 172.15.42.1, host1's bridge, even from another host: the tunnel makes it reachable.
ip link add cn-h2-a mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h2-a)
ip netns exec h2-a ip addr add 172.15.42.101/24 dev eth0
ip netns exec h2-a ip link set eth0 up
ip netns exec h2-a ip route add default via 172.15.42.1
ip link set cn-h2-a master docker0
ip link set cn-h2-a alias containet:test up

# 31. [host2] wire h2-b 172.15.42.104/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.104/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls). As in the seed, the route points at 172.15.42.1, host1's bridge, even from another host: the tunnel makes it reachable.
ip link add cn-h2-b mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h2-b)
ip netns exec h2-b ip addr add 172.15.42.104/24 dev eth0
ip netns exec h2-b ip link set eth0 up
ip netns exec h2-b ip route add default via 172.15.42.1
ip link set cn-h2-b master docker0
ip link set cn-h2-b alias containet:test up

# 32. [host3] wire h3-a 172.15.42.102/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.102/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls). As in the seed, the route points at 172.15.42.1, host1's bridge, even from another host: the tunnel makes it reachable.
ip link add cn-h3-a mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h3-a)
ip netns exec h3-a ip addr add 172.15.42.102/24 dev eth0
ip netns exec h3-a ip link set eth0 up
ip netns exec h3-a ip route add default via 172.15.42.1
ip link set cn-h3-a master docker0
ip link set cn-h3-a alias containet:test up

# 33. [host3] wire h3-b 172.15.42.105/24 to docker0
#    The seed's start-container.sh: a veth pair, one end is eth0 inside with 172.15.42.105/24 and a default route, the other joins docker0. MTU 1462 leaves room for the GRE header (at 1500 ping works but TCP stalls). As in the seed, the route points at 172.15.42.1, host1's bridge, even from another host: the tunnel makes it reachable.
ip link add cn-h3-b mtu 1462 type veth peer name eth0 mtu 1462 netns $(docker inspect -f '{{.State.Pid}}' cn-test-h3-b)
ip netns exec h3-b ip addr add 172.15.42.105/24 dev eth0
ip netns exec h3-b ip link set eth0 up
ip netns exec h3-b ip route add default via 172.15.42.1
ip link set cn-h3-b master docker0
ip link set cn-h3-b alias containet:test up
