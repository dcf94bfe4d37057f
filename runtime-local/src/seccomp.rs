//! The system-call filter every sandboxed process runs under, handed to bubblewrap as a
//! compiled BPF program (`--seccomp FD`). It allows what programs need and refuses, with
//! `EPERM`, what a tenant could use against the kernel or other tenants: the kernel
//! keyring (per uid, so it crossed namespaces), new user and other namespaces (root in
//! one, inside the sandbox), mounts, BPF and perf events, userfaultfd (a staple of kernel
//! exploits), io_uring, tracing other processes, kernel modules and `open_by_handle_at`
//! (which escapes bind mounts). Docker's and Kubernetes' RuntimeDefault profile is the
//! reference; this list is its deny side for an unprivileged process, since our
//! processes hold no capabilities anyway.
//!
//! `clone3` answers `ENOSYS`, as in Docker's profile: its flags sit in memory a filter
//! cannot read, and C libraries fall back to `clone`, whose namespace flags are checked.
//! On x86_64 the x32 system-call numbers (another table the filter's numbers would not
//! match) answer `ENOSYS` too.
//!
//! Built with `seccompiler` (Firecracker's filter compiler); only the few instructions
//! before its program are written here, for the two `ENOSYS` cases it cannot express.

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use std::collections::BTreeMap;

/// System calls refused outright.
const DENIED: &[i64] = &[
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    libc::SYS_lookup_dcookie,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_vhangup,
    libc::SYS_pidfd_getfd,
    libc::SYS_fanotify_init,
];

/// Only on x86_64 (the others never had these).
#[cfg(target_arch = "x86_64")]
const DENIED_X86_64: &[i64] = &[
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_uselib,
    libc::SYS_nfsservctl,
    libc::SYS__sysctl,
];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_X86_64: &[i64] = &[];

/// `clone` flags that make a new namespace: refused (user namespaces above all).
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// `clone3`'s number, the same on every architecture.
const SYS_CLONE3: u32 = 435;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("no system-call filter for this architecture ({0})")]
    Architecture(String),
    #[error("the system-call filter does not compile: {0}")]
    Compile(String),
}

/// The filter as bubblewrap reads it: `struct sock_filter`s in this machine's byte order.
pub(crate) fn program() -> Result<Vec<u8>, FilterError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| FilterError::Architecture(std::env::consts::ARCH.to_owned()))?;
    let compile = |e: seccompiler::BackendError| FilterError::Compile(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .chain(DENIED_X86_64)
        .map(|&nr| (nr, Vec::new()))
        .collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(compile)?;
    rules.insert(libc::SYS_clone, clone_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(compile)?;
    let denied: BpfProgram = filter.try_into().map_err(compile)?;
    let mut program = enosys_prefix();
    program.extend(denied);
    Ok(program
        .iter()
        .flat_map(|f| {
            let mut b = Vec::with_capacity(8);
            b.extend(f.code.to_ne_bytes());
            b.push(f.jt);
            b.push(f.jf);
            b.extend(f.k.to_ne_bytes());
            b
        })
        .collect())
}

/// `ENOSYS` for `clone3`, and on x86_64 for every x32 number; then on to the rest.
fn enosys_prefix() -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JMP_JEQ_K: u16 = 0x15;
    const JMP_JGE_K: u16 = 0x35;
    const JMP_JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const X32_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let x32 = cfg!(target_arch = "x86_64");
    let mut p = vec![op(LD_W_ABS, 0, 0, 0)]; // the number (offset 0 of seccomp_data)
    if x32 {
        p.push(op(JMP_JGE_K, 2, 0, X32_BIT));
    }
    p.push(op(JMP_JEQ_K, 1, 0, SYS_CLONE3));
    p.push(op(JMP_JA, 0, 0, 1));
    p.push(op(RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_machine() {
        let bytes = program().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        // Well under the kernel's 4096 instructions.
        assert!(bytes.len() / 8 < 512, "{} instructions", bytes.len() / 8);
    }
}
