// SPDX-License-Identifier: GPL-2.0
/* A socket filter that counts packets per EtherType/IP protocol in an array
 * map and keeps every packet. Built twice: as is, and with -DFORGET_NULL_CHECK,
 * the one-line change the verifier rejects (the map lookup may return NULL). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("socket")
int count_protocols(struct __sk_buff *skb)
{
	__u32 key = skb->protocol == __builtin_bswap16(0x0800) ? 4 : 0;
	__u8 proto = 0;

	if (key == 4 && bpf_skb_load_bytes(skb, 9, &proto, 1) == 0)
		key = proto;	/* IPv4: count by IP protocol */
	__u64 *count = bpf_map_lookup_elem(&counts, &key);
#ifndef FORGET_NULL_CHECK
	if (!count)
		return skb->len;
#endif
	__sync_fetch_and_add(count, 1);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
