// SPDX-License-Identifier: GPL-2.0
/* BTF-typed pointers: a tp_btf/kfree_skb program walks skb->dev->ifindex
 * (accepted: the verifier types each load from the kernel's BTF), and, with
 * -DTYPECAST, reads through the integer skb->len cast to a pointer
 * (rejected: a scalar is not a pointer). */
#include "drops_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 walked;

SEC("tp_btf/kfree_skb")
int BPF_PROG(walk_skb, struct sk_buff *skb, void *location, int reason)
{
	struct net_device *dev = skb->dev;
#ifdef TYPECAST
	dev = (struct net_device *)(unsigned long)skb->len;
#endif
	walked += dev->ifindex;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
