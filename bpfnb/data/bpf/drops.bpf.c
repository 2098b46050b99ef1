// SPDX-License-Identifier: GPL-2.0
/* bpfnb's packet-drop tracer: one record per kfree_skb, filtered in the
 * program by read-only globals set before load (as pwru does), with the
 * first bytes of the network header read from skb->head and up to snap_len
 * packet bytes appended by bpf_skb_output. */
#include "drops_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define HDR_BYTES 64
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define NO_HEADER 0xffff

/* Filters: 0 means "any". */
const volatile __u32 filter_reason = 0;
const volatile __u32 filter_ifindex = 0;
const volatile __u32 filter_proto = 0;	/* IPPROTO_*: 6 tcp, 17 udp, 1 icmp */
const volatile __u32 filter_port = 0;	/* source or destination port */
const volatile __u32 snap_len = 64;	/* packet bytes to capture at most */

struct drop_event {
	__u64 ts_ns;
	__u64 location;
	__u64 skb;
	__u32 len;
	__s32 ifindex;
	__u32 reason;
	__u32 cpu;
	__u16 protocol;
	__u8 l4proto;
	__u8 hdr_len;
	__u16 sport;
	__u16 dport;
	__u32 captured;
	char ifname[16];
	__u8 hdr[HDR_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} drops SEC(".maps");

/* Keeps the record type in the object's BTF so readers can decode it. */
struct drop_event *unused_drop_event __attribute__((unused));

/* Fills l4proto from the network header bytes in e->hdr, and the ports by
 * reading the transport header at its offset (a variable offset into the
 * stack copy would be rejected by the verifier). */
static __always_inline void parse_l4(struct drop_event *e, const __u8 *nhdr)
{
	__u32 l4 = 0;
	__u8 ports[4];

	if (e->protocol == ETH_P_IP && (e->hdr[0] >> 4) == 4) {
		e->l4proto = e->hdr[9];
		l4 = (e->hdr[0] & 0xf) * 4;
	} else if (e->protocol == ETH_P_IPV6 && (e->hdr[0] >> 4) == 6) {
		e->l4proto = e->hdr[6];
		l4 = 40;
	}
	if (!l4 || (e->l4proto != 6 && e->l4proto != 17))
		return;
	if (bpf_probe_read_kernel(ports, sizeof(ports), nhdr + l4))
		return;
	e->sport = ((__u16)ports[0] << 8) | ports[1];
	e->dport = ((__u16)ports[2] << 8) | ports[3];
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(trace_drops, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	struct drop_event e = {};
	struct net_device *dev;
	__u16 nh;
	__u64 bytes;

	if (filter_reason && reason != filter_reason)
		return 0;
	dev = skb->dev;
	e.ifindex = dev ? dev->ifindex : 0;
	if (filter_ifindex && e.ifindex != filter_ifindex)
		return 0;

	e.len = skb->len;
	e.reason = reason;
	e.location = (__u64)location;
	e.skb = (__u64)skb;
	e.protocol = __builtin_bswap16(skb->protocol);
	nh = skb->network_header;
	if (nh != NO_HEADER &&
	    bpf_probe_read_kernel(e.hdr, sizeof(e.hdr), skb->head + nh) == 0) {
		e.hdr_len = HDR_BYTES;
		parse_l4(&e, skb->head + nh);
	}
	if (filter_proto && e.l4proto != filter_proto)
		return 0;
	if (filter_port && e.sport != filter_port && e.dport != filter_port)
		return 0;
	if (dev)
		bpf_probe_read_kernel_str(e.ifname, sizeof(e.ifname), dev->name);

	/* bpf_skb_output fails (-EFAULT) when asked for more than skb->len. */
	bytes = snap_len < e.len ? snap_len : e.len;
	e.captured = bytes;
	e.ts_ns = bpf_ktime_get_ns();
	e.cpu = bpf_get_smp_processor_id();
	bpf_skb_output(skb, &drops, (bytes << 32) | BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
