//! Fault injection for testing the run itself: remove one permit element of a contract from a
//! compiled nftables script, so that the kernel denies a flow the evaluator allows and the run
//! must say so. Pure text surgery on the script `lower::nft` writes (one element a line).

/// Remove the first `accept` element of the verdict maps whose counter element names
/// `contract` (`tenant/contract`, or `tenant/contract@space` for the first of one key space:
/// `l4`, `icmp`, `icmp6` or `proto`, or `tenant/contract@space:N` for the first whose port,
/// type or protocol range holds N). Returns the new script and the removed element.
pub fn drop_permit(script: &str, spec: &str) -> Result<(String, String), String> {
    let (spec, value) = match spec.split_once(':') {
        Some((s, v)) => match v.parse::<u32>() {
            Ok(v) => (s, Some(v)),
            Err(_) => return Err(format!("`{v}` is not a number")),
        },
        None => (spec, None),
    };
    let holds = |key: &str| -> bool {
        let Some(v) = value else { return true };
        let last = key.rsplit(" . ").next().unwrap_or("").trim();
        let (lo, hi) = last.split_once('-').unwrap_or((last, last));
        matches!((lo.parse::<u32>(), hi.parse::<u32>()), (Ok(lo), Ok(hi)) if lo <= v && v <= hi)
    };
    let (contract, space) = match spec.rsplit_once('@') {
        Some((c, s)) => {
            if !["l4", "icmp", "icmp6", "proto"].contains(&s) {
                return Err(format!(
                    "`{s}` is not a key space (use l4, icmp, icmp6 or proto)"
                ));
            }
            (c, Some(s))
        }
        None => (spec, None),
    };
    let lines: Vec<&str> = script.lines().collect();
    let tag = format!(": \"{contract}\"");
    // The map each line's element belongs to.
    let mut maps: Vec<&str> = Vec::with_capacity(lines.len());
    let mut current = "";
    for l in &lines {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("add element ")
            && let Some(name) = rest.trim_end_matches('{').split_whitespace().nth(2)
        {
            current = name;
        } else if t == "}" {
            current = "";
        }
        maps.push(current);
    }
    // Keys the contract's counter elements carry, per key space.
    let mut keys: Vec<(&str, String)> = Vec::new();
    for (l, m) in lines.iter().zip(&maps) {
        let t = l.trim().trim_end_matches(',');
        if let (Some(k), Some(sp)) = (t.strip_suffix(tag.as_str()), m.strip_prefix("counter_")) {
            keys.push((sp, k.trim().to_string()));
        }
    }
    let target = lines.iter().zip(&maps).position(|(l, m)| {
        let Some(sp) = m.strip_prefix("verdict_") else {
            return false;
        };
        let t = l.trim().trim_end_matches(',');
        space.is_none_or(|s| s == sp)
            && t.strip_suffix(": accept").is_some_and(|k| {
                holds(k.trim()) && keys.iter().any(|(ks, x)| *ks == sp && x == k.trim())
            })
    });
    let Some(at) = target else {
        return Err(format!(
            "contract `{contract}` has no permit element{} in the script",
            space
                .map(|s| format!(" in the {s} key space"))
                .unwrap_or_default()
        ));
    };
    let removed = lines[at].trim().trim_end_matches(',').to_string();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let last = !lines[at].trim_end().ends_with(',');
    let first = at > 0 && {
        let prev = lines[at - 1].trim();
        prev.starts_with("add element ") && prev.ends_with('{')
    };
    if first && last {
        // The only element of its command: the whole command goes (nft refuses `{ }`).
        out.drain(at - 1..=at + 1);
    } else {
        out.remove(at);
        if last && let Some(prev) = out.get_mut(at - 1) {
            *prev = prev.trim_end_matches(',').to_string();
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok((text, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "add element inet gbpc verdict_l4 {\n\t0x1 . 0x2 . tcp . 80 : accept,\n\t0x1 . 0x2 . tcp . 443 : accept\n}\nadd element inet gbpc counter_l4 {\n\t0x1 . 0x2 . tcp . 80 : \"t/web\",\n\t0x1 . 0x2 . tcp . 443 : \"t/tls\"\n}\n";

    #[test]
    fn removes_a_middle_or_last_element_and_keeps_the_commas_right() {
        let (s, removed) = drop_permit(SCRIPT, "t/tls").unwrap_or_default();
        assert_eq!(removed, "0x1 . 0x2 . tcp . 443 : accept");
        assert!(s.contains("\t0x1 . 0x2 . tcp . 80 : accept\n}"), "{s}");
        let (s, removed) = drop_permit(SCRIPT, "t/web").unwrap_or_default();
        assert_eq!(removed, "0x1 . 0x2 . tcp . 80 : accept");
        assert!(
            s.contains("verdict_l4 {\n\t0x1 . 0x2 . tcp . 443 : accept\n"),
            "{s}"
        );
        assert!(drop_permit(SCRIPT, "t/none").is_err());
        assert!(drop_permit(SCRIPT, "t/web@proto").is_err());
        assert!(drop_permit(SCRIPT, "t/web@nope").is_err());
        assert_eq!(
            drop_permit(SCRIPT, "t/web@l4")
                .map(|x| x.1)
                .unwrap_or_default(),
            "0x1 . 0x2 . tcp . 80 : accept"
        );
    }

    #[test]
    fn a_key_space_picks_its_own_map() {
        // The same key text in two maps: the space decides which element goes.
        let two = "add element inet gbpc verdict_icmp {\n\t0x1 . 0x2 . 13 : accept\n}\nadd element inet gbpc counter_icmp {\n\t0x1 . 0x2 . 13 : \"t/c\"\n}\nadd element inet gbpc verdict_proto {\n\t0x1 . 0x2 . 13 : accept\n}\nadd element inet gbpc counter_proto {\n\t0x1 . 0x2 . 13 : \"t/c\"\n}\n";
        let (s, _) = drop_permit(two, "t/c@proto").unwrap_or_default();
        assert!(
            s.contains("verdict_icmp {\n\t0x1 . 0x2 . 13 : accept"),
            "{s}"
        );
        assert!(!s.contains("verdict_proto"), "{s}");
        let (s, _) = drop_permit(two, "t/c").unwrap_or_default();
        assert!(!s.contains("verdict_icmp"), "{s}");
        assert!(s.contains("verdict_proto"), "{s}");
    }

    #[test]
    fn removes_the_block_of_a_single_element() {
        let one = "\tmap verdict_l4 {\n\t}\nadd element inet gbpc verdict_l4 {\n\t0x1 . 0x2 . tcp . 80 : accept\n}\nadd element inet gbpc counter_l4 {\n\t0x1 . 0x2 . tcp . 80 : \"t/web\"\n}\n";
        let (s, _) = drop_permit(one, "t/web").unwrap_or_default();
        assert_eq!(
            s,
            "\tmap verdict_l4 {\n\t}\nadd element inet gbpc counter_l4 {\n\t0x1 . 0x2 . tcp . 80 : \"t/web\"\n}\n"
        );
    }
}
