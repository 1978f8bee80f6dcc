//! Hidden subcommands for differential testing (`gbpc::synth`): print a generated policy, the
//! Kubernetes Pods and Namespaces of a policy's endpoints, and the evaluator's allowed ports
//! between its internal endpoints. Used by scripts/nca-diff.sh; not part of the documented CLI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output;

#[derive(clap::Subcommand)]
pub enum SynthCommand {
    /// Print the generated policy of a seed.
    #[command(name = "__synth", hide = true)]
    Synth {
        seed: u64,
        /// At most 20 endpoints and 2 tenants (instead of 30 and 3).
        #[arg(long, conflicts_with = "large")]
        small: bool,
        /// More groups and endpoints: most policies reach the 30-endpoint cap.
        #[arg(long)]
        large: bool,
    },
    /// Print the Namespaces and Pods of a policy's internal endpoints (JSON List).
    #[command(name = "__k8s-fixture", hide = true)]
    K8sFixture { file: PathBuf },
    /// Print the evaluator's allowed ports between every pair of internal endpoints (JSON).
    #[command(name = "__eval-matrix", hide = true)]
    EvalMatrix { file: PathBuf },
    /// `__k8s-fixture` plus two witness pods per label class (at most 60 classes a tenant).
    #[command(name = "__k8s-class-fixture", hide = true)]
    K8sClassFixture { file: PathBuf },
    /// `__eval-matrix` between the pods of `__k8s-class-fixture` (no `allow_without_denies`).
    #[command(name = "__eval-class-matrix", hide = true)]
    EvalClassMatrix { file: PathBuf },
}

/// Label classes per tenant that the class fixtures probe at most.
const FIXTURE_CLASSES: usize = 60;

pub fn run(cmd: SynthCommand) -> output::Outcome {
    match cmd {
        SynthCommand::Synth { seed, small, large } => {
            let size = if small {
                gbpc::synth::Size::SMALL
            } else if large {
                gbpc::synth::Size::LARGE
            } else {
                gbpc::synth::Size::DEFAULT
            };
            output::out(&gbpc::synth::policy(seed, size))?;
            Ok(ExitCode::SUCCESS)
        }
        SynthCommand::K8sFixture { file } => with_policy(&file, gbpc::synth::k8s_fixture),
        SynthCommand::EvalMatrix { file } => with_policy(&file, gbpc::synth::eval_matrix),
        SynthCommand::K8sClassFixture { file } => with_policy(&file, |p| {
            use gbpc::lower::k8s::fixture;
            fixture::fixture(p, &fixture::pods(p, FIXTURE_CLASSES))
        }),
        SynthCommand::EvalClassMatrix { file } => with_policy(&file, |p| {
            use gbpc::lower::k8s::fixture;
            fixture::matrix(p, &fixture::pods(p, FIXTURE_CLASSES))
        }),
    }
}

fn with_policy(file: &Path, f: fn(&gbpc::model::Policy) -> String) -> output::Outcome {
    let src = std::fs::read_to_string(file)
        .map_err(|e| output::fail(&format!("{}: {e}", file.display())))?;
    let checked = gbpc::check_source(&src);
    if !checked.ok() {
        output::err(&format!(
            "error: {}: the policy has errors (run `gbpc check`)\n",
            file.display()
        ))?;
        return Err(ExitCode::from(1));
    }
    output::out(&(f(&checked.policy) + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
