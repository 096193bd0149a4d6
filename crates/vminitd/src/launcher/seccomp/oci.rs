//! The spec's own seccomp profile (`linux.seccomp`), compiled with
//! `seccompiler`.
//!
//! OCI profiles give each rule its own action; a `seccompiler` filter has
//! one action for matches and one for the rest. The kernel runs every
//! installed filter and keeps the most severe answer (kill > trap > errno >
//! trace > log > allow), the latest filter winning among equals. So a
//! profile becomes a stack:
//!
//! - a base filter, unless the default allows: every call some rule names
//!   is allowed (under that rule's argument conditions), the rest get the
//!   default action;
//! - one filter per other rule action (each errno value apart): its calls
//!   get that action, the rest are allowed. Installed after the base, so
//!   `ERRNO(ENOSYS)` for `clone3` wins over a default `ERRNO(EPERM)`.
//!
//! Calls this architecture lacks are skipped, as libseccomp does; filters
//! are built for the native architecture only (other ABIs are killed).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::super::syscalls;

/// The filters for `profile`, in installation order.
pub(crate) fn filters(profile: &LinuxSeccomp, arch: TargetArch) -> Result<Vec<BpfProgram>, String> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let rules = profile.syscalls().as_deref().unwrap_or_default();
    if syscalls::SYSCALLS.is_empty() && !rules.is_empty() {
        return Err(format!(
            "linux.seccomp: vminitd has no system-call table for {} yet",
            std::env::consts::ARCH
        ));
    }
    // Base filter: named calls pass, others get the default.
    let mut named = Rules::new();
    // Per action: the calls (and conditions) that get it.
    let mut by_action: Vec<(SeccompAction, Rules)> = Vec::new();
    for (index, rule) in profile
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.syscalls[{index}]");
        let act = action(rule.action(), rule.errno_ret()).map_err(|e| format!("{field}: {e}"))?;
        let conditions = conditions(rule.args().as_deref().unwrap_or_default())
            .map_err(|e| format!("{field}.args: {e}"))?;
        for name in rule.names() {
            let Some(nr) = syscalls::number(name) else {
                continue;
            };
            add(&mut named, nr, conditions.clone())?;
            if act != SeccompAction::Allow {
                let slot = match by_action.iter().position(|(a, _)| *a == act) {
                    Some(i) => i,
                    None => {
                        by_action.push((act.clone(), Rules::new()));
                        by_action.len() - 1
                    }
                };
                if let Some((_, rules)) = by_action.get_mut(slot) {
                    add(rules, nr, conditions.clone())?;
                }
            }
        }
    }
    let mut out = Vec::new();
    if default != SeccompAction::Allow {
        out.push(compile(named, default, SeccompAction::Allow, arch)?);
    }
    for (act, rules) in by_action {
        if !rules.is_empty() {
            out.push(compile(rules, SeccompAction::Allow, act, arch)?);
        }
    }
    Ok(out)
}

/// The rules of one filter by call number; `None` means "always", which
/// absorbs any conditional rule for the same call.
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add(
    rules: &mut Rules,
    nr: i64,
    conditions: Option<Vec<SeccompCondition>>,
) -> Result<(), String> {
    let Some(conditions) = conditions else {
        rules.insert(nr, None);
        return Ok(());
    };
    let rule = SeccompRule::new(conditions).map_err(|e| e.to_string())?;
    match rules.entry(nr) {
        Entry::Vacant(slot) => {
            slot.insert(Some(vec![rule]));
        }
        Entry::Occupied(mut slot) => {
            if let Some(list) = slot.get_mut() {
                list.push(rule);
            }
        }
    }
    Ok(())
}

fn conditions(args: &[LinuxSeccompArg]) -> Result<Option<Vec<SeccompCondition>>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for arg in args {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| format!("argument index {} is not 0 to 5", arg.index()))?;
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(arg.value()),
                arg.value_two().unwrap_or(0),
            ),
        };
        out.push(
            SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(Some(out))
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, String> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno.unwrap_or(libc::EPERM.cast_unsigned()))
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err("SCMP_ACT_NOTIFY needs a listener, which vminitd does not offer".into());
        }
    })
}

fn compile(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, String> {
    let rules = rules
        .into_iter()
        .map(|(nr, list)| (nr, list.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(rules, mismatch, matched, arch).map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| format!("linux.seccomp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_allow_list_with_an_errno_rule_becomes_two_filters() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
        );
        let filters = filters(&p, TargetArch::x86_64).unwrap();
        assert_eq!(filters.len(), 2);
    }

    #[test]
    fn an_allow_list_of_every_known_call_fits_the_kernels_limit() {
        let names: Vec<&str> = syscalls::SYSCALLS.iter().map(|(n, _)| *n).collect();
        let json = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]});
        let p: LinuxSeccomp = serde_json::from_value(json).unwrap();
        let filters = filters(&p, TargetArch::x86_64).unwrap();
        // BPF_MAXINSNS: the kernel refuses longer programs.
        assert!(
            filters.iter().all(|f| f.len() <= 4096),
            "{:?}",
            filters.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn notify_is_refused_with_its_rule_named() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        let err = filters(&p, TargetArch::x86_64).unwrap_err();
        assert!(err.contains("syscalls[0]"), "{err}");
    }
}
