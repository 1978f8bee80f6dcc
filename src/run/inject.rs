//! Fault injection for testing the run itself: remove one permit element of a contract from a
//! compiled nftables script, so that the kernel denies a flow the evaluator allows and the run
//! must say so. Pure text surgery on the script `lower::nft` writes (one element a line).

/// Remove the first `accept` element of the verdict maps whose counter element names
/// `contract` (`tenant/contract`). Returns the new script and the removed element.
pub fn drop_permit(script: &str, contract: &str) -> Result<(String, String), String> {
    let lines: Vec<&str> = script.lines().collect();
    let tag = format!(": \"{contract}\"");
    // Keys the contract's counter elements carry.
    let mut keys: Vec<String> = Vec::new();
    for l in &lines {
        let t = l.trim().trim_end_matches(',');
        if let Some(k) = t.strip_suffix(tag.as_str()) {
            keys.push(k.trim().to_string());
        }
    }
    let target = lines.iter().position(|l| {
        let t = l.trim().trim_end_matches(',');
        t.strip_suffix(": accept")
            .is_some_and(|k| keys.iter().any(|x| x == k.trim()))
    });
    let Some(at) = target else {
        return Err(format!(
            "contract `{contract}` has no permit element in the script"
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
