// SPDX-License-Identifier: GPL-2.0
// A livepatch that does NOT relax RMRRs: it replaces version_proc_show (/proc/version) only. The e2e
// harness uses it as a negative control: with it, steps 2 and 4 (load, transition, disable) must pass
// and step 3 (attach after the patch) must FAIL, proving the proof can fail.
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/utsname.h>

static int noop_version_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s version %s (relax-rmrr e2e noop livepatch)\n", utsname()->sysname,
		   utsname()->release);
	return 0;
}

static struct klp_func noop_funcs[] = {
	{ .old_name = "version_proc_show", .new_func = noop_version_proc_show },
	{}
};

static struct klp_object noop_objs[] = {
	{ .name = NULL /* vmlinux */, .funcs = noop_funcs },
	{}
};

static struct klp_patch noop_patch = {
	.mod = THIS_MODULE,
	.objs = noop_objs,
};

static int __init noop_init(void)
{
	return klp_enable_patch(&noop_patch);
}

static void __exit noop_exit(void)
{
}

module_init(noop_init);
module_exit(noop_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("relax-rmrr e2e harness negative control: a livepatch that changes nothing relevant");
