//! `gbpc compile policy.gbp` without `--target`: every target into an output directory, laid
//! out for GitOps (one file per namespace, one for cluster-scoped objects, a kustomization),
//! deterministic, replaced as a whole or not at all, and never over files gbpc did not write.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{code, repo, stderr};

fn gbpc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Every file under `dir` (relative path, bytes), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn names(t: &[(String, Vec<u8>)]) -> Vec<&str> {
    t.iter().map(|(n, _)| n.as_str()).collect()
}

/// A directory with two policies: a multi-tenant one and the same without its `blog` tenant.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fs::read_to_string(repo().join("examples/multi-tenant.gbp")).unwrap();
    fs::write(dir.path().join("p.gbp"), &src).unwrap();
    fs::write(
        dir.path().join("three.gbp"),
        fs::read(repo().join("examples/three-tier.gbp")).unwrap(),
    )
    .unwrap();
    dir
}

#[test]
fn compile_without_target_writes_every_target_beside_the_policy() {
    let dir = scratch();
    let d = dir.path();
    let o = gbpc(d, &["compile", "p.gbp"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("p.gbp: wrote p.out ("), "{out}");
    let t = tree(&d.join("p.out"));
    assert_eq!(
        names(&t),
        [
            ".gbpc-output",
            "k8s/blog.yaml",
            "k8s/shared.yaml",
            "k8s/shop.yaml",
            "kustomization.yaml",
            "nft/endpoint.nft",
            "nft/fabric.nft"
        ]
    );
    let file =
        |n: &str| String::from_utf8(t.iter().find(|(x, _)| x == n).unwrap().1.clone()).unwrap();
    let k = file("kustomization.yaml");
    assert!(k.contains("kind: Kustomization\n"));
    assert!(k.contains("resources:\n- k8s/blog.yaml\n- k8s/shared.yaml\n- k8s/shop.yaml\n"));
    assert!(k.contains("--prune -l app.kubernetes.io/managed-by=gbpc"));
    // The scripts are the ones --target nft prints.
    let fabric = gbpc(d, &["compile", "p.gbp", "--target", "nft"]);
    assert_eq!(file("nft/fabric.nft").as_bytes(), fabric.stdout.as_slice());
    let endpoint = gbpc(
        d,
        &[
            "compile",
            "p.gbp",
            "--target",
            "nft",
            "--enforce",
            "endpoint",
        ],
    );
    assert_eq!(
        file("nft/endpoint.nft").as_bytes(),
        endpoint.stdout.as_slice()
    );
    // Every object is in its namespace's file, labelled and annotated.
    let shop = file("k8s/shop.yaml");
    assert!(shop.contains("namespace: shop\n") && !shop.contains("namespace: blog\n"));
    let docs = shop.matches("kind: NetworkPolicy\n").count();
    assert_eq!(
        shop.matches("app.kubernetes.io/managed-by: gbpc\n").count(),
        docs
    );
    assert_eq!(shop.matches("gbpc/source: p.gbp\n").count(), docs);
    assert_eq!(shop.matches("gbpc/spec-hash: sha256:").count(), docs);
    // The marker names the source and its hash, and lists the files.
    let marker = file(".gbpc-output");
    assert!(marker.contains("compiled from p.gbp (sha256:"), "{marker}");
    assert!(marker.contains("file k8s/shop.yaml\n"));
}

/// The objects of the directory are exactly those of `--target k8s`, split by namespace.
#[test]
fn the_directory_holds_the_objects_of_target_k8s() {
    let dir = scratch();
    let d = dir.path();
    for deny in ["subtract", "cluster"] {
        let o = gbpc(
            d,
            &[
                "compile",
                "three.gbp",
                "--format",
                "json",
                "--k8s-deny",
                deny,
                "--out-dir",
                "o",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let mut from_dir: Vec<Value> = Vec::new();
        for (name, bytes) in tree(&d.join("o")) {
            if let Some(ns) = name.strip_prefix("k8s/") {
                let list: Value = serde_json::from_slice(&bytes).unwrap();
                for it in list["items"].as_array().unwrap() {
                    let want = match it["metadata"]["namespace"].as_str() {
                        Some(n) => format!("{n}.json"),
                        None => "_cluster.json".into(),
                    };
                    assert_eq!(ns, want);
                    from_dir.push(it.clone());
                }
            }
        }
        let one = gbpc(
            d,
            &[
                "compile",
                "three.gbp",
                "--target",
                "k8s",
                "--k8s-deny",
                deny,
            ],
        );
        let list: Value = serde_json::from_slice(&one.stdout).unwrap();
        let key = |v: &Value| v.to_string();
        let a: BTreeSet<String> = from_dir.iter().map(key).collect();
        let b: BTreeSet<String> = list["items"].as_array().unwrap().iter().map(key).collect();
        assert_eq!(a, b, "{deny}");
        let kinds: BTreeSet<&str> = from_dir.iter().filter_map(|i| i["kind"].as_str()).collect();
        if deny == "cluster" {
            assert!(kinds.contains("ClusterNetworkPolicy"));
            let k = fs::read_to_string(d.join("o/kustomization.yaml")).unwrap();
            assert!(k.contains("- k8s/_cluster.json\n"), "{k}");
        }
    }
}

#[test]
fn output_is_deterministic_and_replaced_as_a_whole() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(code(&gbpc(d, &["compile", "p.gbp", "--out-dir", "o"])), 0);
    let first = tree(&d.join("o"));
    assert_eq!(code(&gbpc(d, &["compile", "p.gbp", "--out-dir", "o"])), 0);
    assert_eq!(tree(&d.join("o")), first, "same input, same bytes");
    // A tenant deleted from the policy: its file is gone, the others stay (kubectl apply
    // --prune then deletes its objects).
    let src = fs::read_to_string(d.join("p.gbp")).unwrap();
    let start = src.find("tenant blog").unwrap();
    let end = start + src[start..].find("\n}\n").unwrap() + 3;
    let src: String = format!("{}{}", &src[..start], &src[end..])
        .replace(", blog/metrics", "")
        .lines()
        .filter(|l| !l.contains("blog/"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(d.join("p.gbp"), src).unwrap();
    let o = gbpc(d, &["compile", "p.gbp", "--out-dir", "o"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = tree(&d.join("o"));
    assert!(!names(&after).contains(&"k8s/blog.yaml"));
    assert!(names(&after).contains(&"k8s/shop.yaml"));
    // Nothing is left beside the directory.
    let beside: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

/// A compile that fails leaves the old directory exactly as it was, and nothing beside it.
#[test]
fn a_failed_compile_leaves_the_old_directory() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(code(&gbpc(d, &["compile", "p.gbp", "--out-dir", "o"])), 0);
    let before = tree(&d.join("o"));
    fs::write(d.join("bad.gbp"), "tenant t { group g { provides nope } }").unwrap();
    fs::write(
        d.join("cnp.gbp"),
        {
            let mut s = String::from("tenant t {\n  filter f { tcp 9 }\n");
            for i in 0..992 {
                s.push_str(&format!(
                    "  contract c{i} {{ subject no deny f }}\n  group p{i} {{ select app=p{i}  provides c{i} }}\n"
                ));
            }
            s.push_str("  group q { select app=q  consumes ");
            s.push_str(&(0..992).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", "));
            s.push_str(" }\n}\n");
            s
        },
    )
    .unwrap();
    for (args, want) in [
        (vec!["compile", "bad.gbp", "--out-dir", "o"], 1),
        // Checks clean, but its cluster tier needs more priorities than there are.
        (
            vec![
                "compile",
                "cnp.gbp",
                "--out-dir",
                "o",
                "--k8s-deny",
                "cluster",
            ],
            1,
        ),
        (
            // A usage error (exit 2): refused before anything is read.
            vec!["compile", "p.gbp", "--out-dir", "o", "--table=9bad"],
            2,
        ),
    ] {
        let o = gbpc(d, &args);
        assert_eq!(code(&o), want, "{args:?}: {}", stderr(&o));
        assert_eq!(tree(&d.join("o")), before, "{args:?}");
    }
    let left: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// gbpc replaces only a directory it wrote, or an empty one: a file someone added, a
/// directory it did not write, a file at the path, or the policy inside it are refused (exit
/// 2), and nothing changes.
#[test]
fn directories_gbpc_did_not_write_are_refused() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(code(&gbpc(d, &["compile", "p.gbp", "--out-dir", "o"])), 0);
    fs::write(d.join("o/NOTES.md"), "mine").unwrap();
    let before = tree(&d.join("o"));
    let o = gbpc(d, &["compile", "p.gbp", "--out-dir", "o"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("NOTES.md"), "{}", stderr(&o));
    assert_eq!(tree(&d.join("o")), before);

    // A directory of someone else's.
    fs::create_dir(d.join("theirs")).unwrap();
    fs::write(d.join("theirs/deploy.yaml"), "x").unwrap();
    let o = gbpc(d, &["compile", "p.gbp", "--out-dir", "theirs"]);
    assert_eq!(code(&o), 2);
    assert_eq!(fs::read(d.join("theirs/deploy.yaml")).unwrap(), b"x");
    assert_eq!(fs::read_dir(d.join("theirs")).unwrap().count(), 1);

    // A file at the path.
    fs::write(d.join("file"), "x").unwrap();
    let o = gbpc(d, &["compile", "p.gbp", "--out-dir", "file"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));

    // The policy inside the output directory.
    fs::create_dir(d.join("in")).unwrap();
    fs::copy(d.join("p.gbp"), d.join("in/p.gbp")).unwrap();
    let o = gbpc(d, &["compile", "in/p.gbp", "--out-dir", "in"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("holds the input"), "{}", stderr(&o));
    assert!(d.join("in/p.gbp").exists());

    // An empty directory is taken.
    fs::create_dir(d.join("empty")).unwrap();
    let o = gbpc(d, &["compile", "p.gbp", "--out-dir", "empty"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(d.join("empty/kustomization.yaml").exists());
}

/// A symbolic link to the output directory is followed: the directory it names is replaced,
/// the link stays.
#[test]
fn a_link_to_the_output_directory_is_followed() {
    let dir = scratch();
    let d = dir.path();
    assert_eq!(
        code(&gbpc(d, &["compile", "p.gbp", "--out-dir", "real"])),
        0
    );
    std::os::unix::fs::symlink("real", d.join("link")).unwrap();
    let o = gbpc(d, &["compile", "three.gbp", "--out-dir", "link"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(d.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(d.join("real/k8s/shop.yaml").exists());
    assert!(!d.join("real/k8s/blog.yaml").exists());
}

#[test]
fn usage_errors_of_the_output_directory() {
    let dir = scratch();
    let d = dir.path();
    for (args, says) in [
        (
            vec!["compile", "p.gbp", "--target", "k8s", "--out-dir", "o"],
            "--out-dir",
        ),
        (vec!["compile", "p.gbp", "-o", "x"], "-o writes one target"),
        (vec!["compile", "-", "--allow-empty"], "--out-dir"),
    ] {
        let o = gbpc(d, &args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!d.join("o").exists() && !d.join("x").exists());
    }
}
