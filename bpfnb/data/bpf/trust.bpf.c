// SPDX-License-Identifier: GPL-2.0
/* Trust levels of BTF-typed pointers (Linux 6.18): a tp_btf/kfree_skb program
 * whose pointers the verifier trusts to different degrees —
 *   bpf_get_current_task_btf()  trusted_ptr_task_struct   (always valid)
 *   task->real_parent           rcu_ptr_task_struct       (valid inside RCU)
 *   skb->sk                     rcu_ptr_or_null_sock      (RCU, may be NULL)
 *   rx_sk, the 4th argument     trusted_ptr_or_null_sock  (may be NULL)
 *   skb->dev                    untrusted_ptr_net_device  (read fault-tolerantly)
 * With -DHELPER_MISUSE it also hands the task to bpf_skc_to_tcp_sock(), whose
 * argument must be a socket: rejected. The types are CO-RE declarations of only
 * the fields read. */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed short __s16;
typedef signed int __s32;
typedef signed long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;

struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct task_struct {
	struct task_struct *real_parent;
	int pid;
} __attribute__((preserve_access_index));

enum skb_drop_reason { SKB_DROP_REASON_NOT_SPECIFIED = 2 };

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 seen;

SEC("tp_btf/kfree_skb")
int BPF_PROG(trust_levels, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *parent = task->real_parent;
	struct sock *sk = skb->sk;
	struct net_device *dev = skb->dev;

	seen += parent->pid + dev->ifindex;
	if (rx_sk)
		seen += rx_sk->__sk_common.skc_family;
	if (sk)
		seen += sk->__sk_common.skc_family;
#ifdef HELPER_MISUSE
	seen += (unsigned long)bpf_skc_to_tcp_sock(task);
#endif
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
