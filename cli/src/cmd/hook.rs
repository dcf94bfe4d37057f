//! `micro hook pre-receive` and `post-receive`: git runs them in the tenant repo on every
//! push; the logic is the git host's (`micro_githost::hook`). git shows our stderr to the
//! pusher.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    /// Which hook git is running
    #[arg(value_parser = ["pre-receive", "post-receive"])]
    pub name: String,
}

pub fn run(args: &HookArgs) -> ExitCode {
    let ran = match args.name.as_str() {
        "post-receive" => micro_githost::hook::post_receive(std::io::stdin().lock()),
        _ => micro_githost::hook::pre_receive(std::io::stdin().lock()),
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
