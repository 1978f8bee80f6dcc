//! Object and rule names: readable where they fit, cut and made unique by a hash where they do
//! not. Kubernetes object names are DNS-1123 subdomains of at most 253 characters; gbpc names
//! are DNS labels, so `.` never occurs inside one and separates them unambiguously.

use super::{ALLOW_DNS, DEFAULT_DENY, PREFIX};

/// Object names are DNS-1123 subdomains.
pub(super) const NAME_MAX: usize = 253;

/// FNV-1a, 64 bits: a stable hash for shortened names (not for security).
pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Ten hex digits of the hash of `key`: what tells apart names cut to fit a length limit.
pub(super) fn hash_tag(key: &str) -> String {
    let mut hash = format!("{:016x}", fnv1a(key));
    hash.truncate(10);
    hash
}

/// A name shortened to fit, made unique by a hash of the full identity.
pub(super) fn hashed_name(readable: &str, key: &str) -> String {
    let tag = hash_tag(key);
    let keep = NAME_MAX - tag.len() - 1;
    let head = readable.get(..keep.min(readable.len())).unwrap_or(readable);
    format!("{}-{tag}", head.trim_end_matches(['-', '.']))
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    // Names are ASCII (DNS labels), so a byte cut is a character cut; fall back to chars.
    match s.get(..max.min(s.len())) {
        Some(t) => t.to_string(),
        None => s.chars().take(max).collect(),
    }
}

/// A rule name of at most `max` characters: the full name, or its head and a hash of the
/// whole, so that two long names never become the same rule name.
pub(super) fn rule_name(full: &str, max: usize) -> String {
    if full.len() <= max {
        return full.to_string();
    }
    let tag = hash_tag(full);
    format!("{}-{tag}", truncate(full, max - tag.len() - 1))
}

/// The NetworkPolicy of a group: `gbpc-<group>`, except for the two groups whose policy would
/// take the name of a policy gbpc generates in every namespace (`gbpc-default-deny`,
/// `gbpc-allow-dns`): theirs is `gbpc-group.<group>`, which no other group's can be (a group
/// name has no `.`). So every valid group name lowers, and no two policies share a name.
pub fn group_policy_name(group: &str) -> String {
    let name = format!("{PREFIX}{group}");
    if name == DEFAULT_DENY || name == ALLOW_DNS {
        format!("{PREFIX}group.{group}")
    } else {
        name
    }
}

/// The NetworkPolicy of a label class: its groups' names joined by `.` (sorted), and for the
/// cells after the first of a class that needs several, `.<n>`. A class of one group whose
/// only cell is the group's own selector is named like the group's policy.
pub(super) fn class_policy_name(groups: &[&str], cell: usize) -> String {
    let base = match groups {
        [one] => group_policy_name(one),
        _ => format!("{PREFIX}{}", groups.join(".")),
    };
    if cell == 0 {
        base
    } else {
        format!("{base}.{}", cell + 1)
    }
}
