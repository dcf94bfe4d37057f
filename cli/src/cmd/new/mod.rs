//! `micro new NAME [--lang python|node|go|static] [--template service|api|web|function]`:
//! a service skeleton that runs as generated, built the way its files say (no
//! dependencies to fetch), with a readiness path. The templates are the four shapes of
//! the original Micro: an internal `service`, a public JSON `api`, a public `web` page,
//! and a `function` (a single handler the platform's runner serves: no server code).

mod api;
mod function;
mod service;
mod web;

use anyhow::{Context, Result, bail};
use micro_tenant::spec::check_service_name;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The service name (a DNS label: lowercase letters, digits, '-'); also the folder
    pub name: String,
    /// A service that serves HTTPS with its own certificate and takes calls only from
    /// the platform, which names the caller (`tls: true`; Python)
    #[arg(long)]
    pub tls: bool,
    /// The language of the skeleton
    #[arg(long, value_enum, default_value_t = Lang::Python)]
    pub lang: Lang,
    /// Its shape (default: `service`; `web` for static files)
    #[arg(long, value_enum)]
    pub template: Option<Template>,
}

/// What a skeleton is written in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// main.py, standard library only
    Python,
    /// server.js and a package.json (no dependencies): built with npm
    Node,
    /// main.go and a go.mod: built with `go build`, started as built
    Go,
    /// index.html, served as it is
    Static,
}

/// What a skeleton is for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// An internal service: JSON over HTTP, called by siblings and `micro call`
    Service,
    /// A public JSON API (`public: true`): a small resource with list, create, read and
    /// delete
    Api,
    /// A public web page (`public: true`): HTML rendered by the service, with a static
    /// folder
    Web,
    /// One handler (`handle(request)` in handler.py or handler.js); the platform's
    /// runner serves it
    Function,
}

/// The files of a skeleton, or why there is none.
fn skeleton(
    lang: Lang,
    template: Template,
    tls: bool,
) -> Result<&'static [(&'static str, &'static str)]> {
    if tls && (lang, template) != (Lang::Python, Template::Service) {
        bail!(
            "--tls has a Python service skeleton only: leave out --lang and --template, or --tls"
        );
    }
    Ok(match (template, lang) {
        (Template::Service, Lang::Python) if tls => &[
            ("service.yaml", service::SERVICE_YAML_TLS),
            ("main.py", service::MAIN_PY_TLS),
            (".gitignore", service::GITIGNORE),
        ],
        (Template::Service, Lang::Python) => &[
            ("service.yaml", service::SERVICE_YAML),
            ("main.py", service::MAIN_PY),
            (".gitignore", service::GITIGNORE),
        ],
        (Template::Service, Lang::Node) => &[
            ("service.yaml", service::NODE_YAML),
            ("package.json", service::PACKAGE_JSON),
            ("server.js", service::SERVER_JS),
            (".gitignore", service::NODE_GITIGNORE),
        ],
        (Template::Service, Lang::Go) => &[
            ("service.yaml", service::GO_YAML),
            ("go.mod", service::GO_MOD),
            ("main.go", service::MAIN_GO),
            (".gitignore", service::GO_GITIGNORE),
        ],
        (Template::Web, Lang::Static) => &[
            ("service.yaml", service::STATIC_YAML),
            ("index.html", service::INDEX_HTML),
        ],
        (Template::Api, Lang::Python) => &[
            ("service.yaml", api::PYTHON_YAML),
            ("main.py", api::MAIN_PY),
            (".gitignore", service::GITIGNORE),
        ],
        (Template::Api, Lang::Node) => &[
            ("service.yaml", api::NODE_YAML),
            ("package.json", service::PACKAGE_JSON),
            ("server.js", api::SERVER_JS),
            (".gitignore", service::NODE_GITIGNORE),
        ],
        (Template::Api, Lang::Go) => &[
            ("service.yaml", api::GO_YAML),
            ("go.mod", service::GO_MOD),
            ("main.go", api::MAIN_GO),
            (".gitignore", service::GO_GITIGNORE),
        ],
        (Template::Web, Lang::Python) => &[
            ("service.yaml", web::PYTHON_YAML),
            ("main.py", web::MAIN_PY),
            ("static/style.css", web::STYLE_CSS),
            (".gitignore", service::GITIGNORE),
        ],
        (Template::Web, Lang::Node) => &[
            ("service.yaml", web::NODE_YAML),
            ("package.json", service::PACKAGE_JSON),
            ("server.js", web::SERVER_JS),
            ("static/style.css", web::STYLE_CSS),
            (".gitignore", service::NODE_GITIGNORE),
        ],
        (Template::Web, Lang::Go) => &[
            ("service.yaml", web::GO_YAML),
            ("go.mod", service::GO_MOD),
            ("main.go", web::MAIN_GO),
            ("static/style.css", web::STYLE_CSS),
            (".gitignore", service::GO_GITIGNORE),
        ],
        (Template::Function, Lang::Python) => &[
            ("service.yaml", function::YAML),
            ("handler.py", function::HANDLER_PY),
            (".gitignore", service::GITIGNORE),
        ],
        (Template::Function, Lang::Node) => &[
            ("service.yaml", function::YAML),
            ("handler.js", function::HANDLER_JS),
            (".gitignore", service::NODE_GITIGNORE),
        ],
        (Template::Function, Lang::Go) => {
            bail!(
                "--template function is Python's or Node's (a Go handler needs a server of its own): use --lang python or node, or --template service"
            )
        }
        (_, Lang::Static) => {
            bail!("static files are a web page: leave out --template, or use --template web")
        }
    })
}

pub fn run(args: &NewArgs) -> Result<()> {
    check_service_name(&args.name).map_err(anyhow::Error::msg)?;
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let template = args.template.unwrap_or(match args.lang {
        Lang::Static => Template::Web,
        _ => Template::Service,
    });
    let files = skeleton(args.lang, template, args.tls)?;
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text.replace("{{name}}", &args.name))?;
    }
    println!("Created service {} in ./{}", args.name, args.name);
    println!("Run it with: micro run ./{}", args.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_has_a_skeleton_with_a_readiness_path_where_it_can() {
        use clap::ValueEnum;
        for template in Template::value_variants() {
            for lang in Lang::value_variants() {
                let Ok(files) = skeleton(*lang, *template, false) else {
                    assert!(
                        matches!(
                            (template, lang),
                            (Template::Function, Lang::Go) | (_, Lang::Static)
                        ),
                        "{template:?} {lang:?}"
                    );
                    continue;
                };
                let yaml = files.iter().find(|(f, _)| *f == "service.yaml").unwrap().1;
                assert!(yaml.contains("readiness"), "{template:?} {lang:?}");
                let public =
                    matches!(template, Template::Api | Template::Web) && *lang != Lang::Static;
                assert_eq!(
                    yaml.contains("\npublic: true"),
                    public,
                    "{template:?} {lang:?}"
                );
            }
        }
        assert!(skeleton(Lang::Node, Template::Service, true).is_err());
    }
}
