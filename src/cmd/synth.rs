//! Hidden subcommands for differential testing (`gbpc::synth`): print a generated policy, the
//! Kubernetes Pods and Namespaces of a policy's endpoints, and the evaluator's allowed ports
//! between its internal endpoints. Used by scripts/nca-diff.sh; not part of the documented CLI.

use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn run(cmd: SynthCommand) -> ExitCode {
    match cmd {
        SynthCommand::Synth { seed, small, large } => {
            let size = if small {
                gbpc::synth::Size::SMALL
            } else if large {
                gbpc::synth::Size::LARGE
            } else {
                gbpc::synth::Size::DEFAULT
            };
            print!("{}", gbpc::synth::policy(seed, size));
            ExitCode::SUCCESS
        }
        SynthCommand::K8sFixture { file } => with_policy(&file, gbpc::synth::k8s_fixture),
        SynthCommand::EvalMatrix { file } => with_policy(&file, gbpc::synth::eval_matrix),
    }
}

fn with_policy(file: &PathBuf, f: fn(&gbpc::model::Policy) -> String) -> ExitCode {
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gbpc: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let checked = gbpc::check_source(&src);
    if !checked.ok() {
        eprintln!(
            "gbpc: {}: the policy has errors (run `gbpc check`)",
            file.display()
        );
        return ExitCode::from(1);
    }
    println!("{}", f(&checked.policy));
    ExitCode::SUCCESS
}
