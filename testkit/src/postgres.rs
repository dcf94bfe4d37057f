//! A throwaway PostgreSQL server from the installed server binaries (`initdb`,
//! `pg_ctl`): a temp data dir, a free port on 127.0.0.1, trust auth (or TLS with client
//! certificates), stopped on drop. When the tests run as root it runs as the `postgres`
//! user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; .ci/run installs them"
        )
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl TempPostgres {
    /// One of the server's programs, run as the `postgres` user when the tests are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that speaks TLS only over TCP (`hostssl`, plain TCP rejected) and takes
    /// only clients with a certificate from `tls.client_ca` naming their user (`cert`).
    pub fn start_tls(tls: &PgTls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&PgTls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot hand the temp dir to the postgres user");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = TempPostgres {
            dir,
            bin: bin_dir(),
            port,
            as_postgres,
        };
        let data = pg.data();
        let data = data.to_str().unwrap();
        pg.run(
            "initdb",
            &[
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let socket_dir = pg.dir.path().to_str().unwrap().to_owned();
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {socket_dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        );
        if let Some(tls) = tls {
            options.push_str(&pg.tls_options(tls));
        }
        let log = Path::new(&socket_dir).join("postgres.log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        pg
    }

    /// Writes the server's TLS files and its `pg_hba.conf`; the options turning TLS on.
    fn tls_options(&self, tls: &PgTls) -> String {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.path();
        for (name, text) in [
            ("server.crt", &tls.server_cert),
            ("server.key", &tls.server_key),
            ("client-ca.crt", &tls.client_ca),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            if self.as_postgres {
                assert!(
                    Command::new("chown")
                        .arg("postgres")
                        .arg(&path)
                        .status()
                        .unwrap()
                        .success()
                );
            }
        }
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
        format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            at("server.crt"),
            at("server.key"),
            at("client-ca.crt")
        )
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Over its Unix socket, where it trusts everyone (for setting up).
    fn socket_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost/{database}?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Drops database `name` (a server using it stopped) and makes it again, empty.
    pub async fn recreate_database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.socket_url("postgres"))
            .await
            .unwrap();
        let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE \"{name}\" WITH (FORCE)"));
        sqlx::query(drop).execute(&mut admin).await.unwrap();
        let _ = admin.close().await;
        self.fresh_database(name).await
    }

    /// A new, empty database for one scenario; its TCP URL.
    pub async fn fresh_database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.socket_url("postgres"))
            .await
            .unwrap();
        // `name` is one of our scenario names: a plain identifier.
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
        sqlx::query(create).execute(&mut admin).await.unwrap();
        self.url(name)
    }
}

/// What a TLS server is given (PEM): its certificate and key, and the CA its clients'
/// certificates must come from.
pub struct PgTls {
    pub server_cert: String,
    pub server_key: String,
    pub client_ca: String,
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .output();
    }
}
