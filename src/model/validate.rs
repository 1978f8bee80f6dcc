//! Validators for the lexical shapes the grammar accepts loosely: names, label keys and values,
//! ports, ICMP types. Each returns what is wrong and how to fix it.

/// The longest name Kubernetes accepts for a namespace or label value (a DNS-1123 label).
pub const MAX_NAME: usize = 63;

/// What is wrong with a value, and a suggestion.
pub struct Invalid {
    pub message: String,
    pub help: String,
    pub suggestion: Option<String>,
}

fn invalid(
    message: impl Into<String>,
    help: impl Into<String>,
    suggestion: Option<String>,
) -> Invalid {
    Invalid {
        message: message.into(),
        help: help.into(),
        suggestion,
    }
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, alphanumeric at both ends, 1-63 chars.
/// Tenants become Kubernetes namespaces, groups become policy and set names, so every name of
/// the language obeys this.
pub fn dns_label(what: &str, name: &str) -> Result<(), Invalid> {
    let suggestion = {
        let s: String = name
            .chars()
            .map(|c| match c {
                'A'..='Z' => c.to_ascii_lowercase(),
                'a'..='z' | '0'..='9' | '-' => c,
                _ => '-',
            })
            .collect();
        let s = s.trim_matches('-');
        let s: String = s.chars().take(MAX_NAME).collect();
        let s = s.trim_end_matches('-').to_string();
        (!s.is_empty() && s != name).then_some(s)
    };
    if name.is_empty() {
        return Err(invalid(
            format!("{what} name is empty"),
            "give it a name",
            None,
        ));
    }
    if name.len() > MAX_NAME {
        return Err(invalid(
            format!(
                "{what} name `{}` is {} characters long; the limit is {MAX_NAME}",
                crate::text::ellipsis(name, 24),
                name.len()
            ),
            "names become Kubernetes names and nftables identifiers (DNS-1123 labels, at most 63 characters)",
            suggestion,
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(invalid(
            format!("{what} name `{name}` contains `{c}`"),
            "names are DNS-1123 labels: lowercase letters, digits and `-`",
            suggestion,
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid(
            format!("{what} name `{name}` must start and end with a letter or digit"),
            "names are DNS-1123 labels",
            suggestion,
        ));
    }
    Ok(())
}

/// At most `n` characters of `s`, with `…` when something was cut.
pub fn truncate(s: &str, n: usize) -> String {
    crate::text::ellipsis(s, n)
}

fn label_name(part: &str, what: &str) -> Result<(), Invalid> {
    if part.is_empty() || part.len() > MAX_NAME {
        return Err(invalid(
            format!(
                "label {what} `{}` must be 1-63 characters",
                crate::text::ellipsis(part, 64)
            ),
            "Kubernetes label names are at most 63 characters",
            None,
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let b = part.as_bytes();
    if !part.chars().all(ok_char)
        || !b[0].is_ascii_alphanumeric()
        || !b[b.len() - 1].is_ascii_alphanumeric()
    {
        return Err(invalid(
            format!("label {what} `{part}` is not valid"),
            "label names use letters, digits, `-`, `_` and `.`, and start and end with a letter or digit",
            None,
        ));
    }
    Ok(())
}

/// A Kubernetes label key: `[prefix/]name`, prefix a DNS-1123 subdomain of at most 253.
pub fn label_key(key: &str) -> Result<(), Invalid> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= MAX_NAME
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(invalid(
                format!(
                    "label key prefix `{}` is not a DNS subdomain",
                    crate::text::ellipsis(p, 64)
                ),
                "a label key prefix is a lowercase DNS name such as `app.kubernetes.io`",
                None,
            ));
        }
    }
    label_name(name, "key")
}

/// A Kubernetes label value: empty, or a label name.
pub fn label_value(value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Ok(());
    }
    label_name(value, "value")
}

/// A port number: 1-65535.
pub fn port(text: &str) -> Result<u16, Invalid> {
    match text.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        Ok(0) => Err(invalid(
            "port 0 is not a valid destination port",
            "ports are 1-65535",
            None,
        )),
        _ if text.bytes().all(|b| b.is_ascii_digit()) => Err(invalid(
            format!("port {} is out of range", crate::text::ellipsis(text, 12)),
            "ports are 1-65535",
            None,
        )),
        _ => Err(invalid(
            format!("`{}` is not a port", crate::text::ellipsis(text, 24)),
            "a port is one number, 1-65535",
            None,
        )),
    }
}

/// The protocol that has a form of its own for IP protocol number `n` (`ip/6` is `tcp`), if
/// any. Probes `ip/N` stand for the other protocols only: the kernel sees protocol 6 as TCP,
/// with a port, so `ip/6` could be neither probed apart from TCP nor matched apart from `tcp`
/// filter entries.
pub fn own_form(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        _ => return None,
    })
}

/// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`: a protocol word as prose writes it.
pub fn proto_title(proto: &str) -> &'static str {
    match proto {
        "tcp" => "TCP",
        "udp" => "UDP",
        "sctp" => "SCTP",
        "icmp" => "ICMP",
        "icmpv6" => "ICMPv6",
        _ => "IP",
    }
}

/// What to write instead of `ip/N` for a protocol with a form of its own.
pub fn own_form_help(proto: &str) -> String {
    let example = match proto {
        "tcp" => "tcp/443",
        "udp" => "udp/53",
        "sctp" => "sctp/3868",
        "icmp" => "icmp/echo-request",
        _ => "icmpv6/echo-request",
    };
    format!(
        "probe it as {example}: `ip/N` is for protocols without a form of their own (GRE is \
         ip/47, ESP ip/50), which only `ip` filter entries match"
    )
}

/// ICMP (v4) type names nftables knows, with their numbers.
pub const ICMP_TYPES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("destination-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("address-mask-request", 17),
    ("address-mask-reply", 18),
];

/// ICMPv6 type names nftables knows, with their numbers.
pub const ICMPV6_TYPES: &[(&str, u8)] = &[
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-listener-query", 130),
    ("mld-listener-report", 131),
    ("mld-listener-done", 132),
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
    ("router-renumbering", 138),
    ("ind-neighbor-solicit", 141),
    ("ind-neighbor-advert", 142),
    ("mld2-listener-report", 143),
];

/// An ICMP type by number (0-255) or name.
pub fn icmp_type(v6: bool, text: &str) -> Result<u8, Invalid> {
    let table = if v6 { ICMPV6_TYPES } else { ICMP_TYPES };
    let family = if v6 { "icmpv6" } else { "icmp" };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(n) if n <= 255 => Ok(n as u8),
            _ => Err(invalid(
                format!(
                    "{family} type {} is out of range",
                    crate::text::ellipsis(text, 12)
                ),
                "ICMP types are 0-255",
                None,
            )),
        };
    }
    if let Some((_, n)) = table.iter().find(|(name, _)| *name == text) {
        return Ok(*n);
    }
    let best = crate::model::build::closest(text, table.iter().map(|(n, _)| *n));
    Err(invalid(
        format!(
            "unknown {family} type `{}`",
            crate::text::ellipsis(text, 40)
        ),
        format!(
            "{family} types are numbers 0-255 or one of: {}",
            table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
        best.map(str::to_string),
    ))
}

/// The canonical name of an ICMP type, if it has one.
pub fn icmp_type_name(v6: bool, n: u8) -> Option<&'static str> {
    let table = if v6 { ICMPV6_TYPES } else { ICMP_TYPES };
    table.iter().find(|(_, t)| *t == n).map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns_label("group", "web-1").is_ok());
        assert!(dns_label("group", "Web").is_err());
        assert!(dns_label("group", "-web").is_err());
        assert!(dns_label("group", &"a".repeat(64)).is_err());
        assert_eq!(
            dns_label("group", "Web_Tier")
                .err()
                .and_then(|e| e.suggestion),
            Some("web-tier".into())
        );
    }

    #[test]
    fn labels() {
        assert!(label_key("app").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("App.io/name").is_err());
        assert!(label_key("-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn ports_and_types() {
        assert_eq!(port("443").ok(), Some(443));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("99999999999999999999").is_err());
        assert_eq!(icmp_type(false, "echo-request").ok(), Some(8));
        assert_eq!(icmp_type(true, "echo-request").ok(), Some(128));
        assert!(icmp_type(false, "256").is_err());
        assert_eq!(
            icmp_type(false, "echo-requst")
                .err()
                .and_then(|e| e.suggestion),
            Some("echo-request".into())
        );
    }
}
