//! `micro hook pre-receive`: git runs it in the tenant repo on every push; the logic is
//! the git host's (`micro_githost::hook`). git shows our stderr to the pusher.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    /// Which hook git is running
    #[arg(value_parser = ["pre-receive"])]
    pub name: String,
}

pub fn run(_args: &HookArgs) -> ExitCode {
    match micro_githost::hook::pre_receive(std::io::stdin().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
