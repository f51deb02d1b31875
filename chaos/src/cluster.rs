//! The checker's private cluster: its own Redis, MariaDB and nisshi broker
//! (so killing them harms nothing else on the machine), the proxies between
//! control and each dependency, one `gochat control` and two `gochat edge`
//! gateways, all in one temp dir. It owns every process it starts: start,
//! kill -9, restart with the same command line, SIGSTOP/SIGCONT, and kills
//! them all when dropped (a normal end, an error or Ctrl-C).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use gochat_testkit::process::free_port;

use crate::process::{Proc, loopback, run_quiet, wait_port};
use crate::proxy::Proxy;

/// A process of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The checker's Redis.
    Redis,
    /// The checker's MariaDB.
    Mariadb,
    /// The checker's nisshi broker.
    Broker,
    /// `gochat control` (logic, repo, task).
    Control,
    /// Gateway 1.
    Edge1,
    /// Gateway 2.
    Edge2,
}

impl Role {
    /// Every role, in start order.
    pub const ALL: [Role; 6] = [
        Role::Redis,
        Role::Mariadb,
        Role::Broker,
        Role::Control,
        Role::Edge1,
        Role::Edge2,
    ];

    /// Its name in output and log files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Redis => "redis",
            Role::Mariadb => "mariadb",
            Role::Broker => "broker",
            Role::Control => "control",
            Role::Edge1 => "edge1",
            Role::Edge2 => "edge2",
        }
    }
}

/// A dependency control reaches through a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dep {
    /// MariaDB (only control uses it).
    Mariadb,
    /// Redis (control's connections; the gateways connect directly).
    Redis,
    /// The broker: it advertises the proxy, so every Kafka client goes through it.
    Broker,
}

/// Where to find the programs the cluster runs.
pub struct Programs {
    /// The `gochat` binary.
    pub gochat: PathBuf,
    /// The nisshi (or tansu) broker binary.
    pub broker: PathBuf,
}

/// The running cluster.
pub struct Cluster {
    /// Temp dir with every data dir and log.
    pub dir: PathBuf,
    /// Keep `dir` when dropped (asked for, or something failed).
    pub keep: bool,
    procs: HashMap<Role, Proc>,
    proxies: Vec<(Dep, Proxy)>,
    /// Control's REST base URL.
    pub http: String,
    /// The gateways' WebSocket URLs.
    pub ws: [String; 2],
    ports: HashMap<Role, u16>,
}

impl Cluster {
    /// Starts everything and waits until control is ready and both gateways
    /// accept connections.
    pub async fn start(programs: &Programs, keep: bool) -> Result<Cluster> {
        let dir = std::env::temp_dir().join(format!(
            "gochat-chaos-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir)?;
        let mut c = Cluster {
            dir: dir.clone(),
            keep,
            procs: HashMap::new(),
            proxies: Vec::new(),
            http: String::new(),
            ws: [String::new(), String::new()],
            ports: HashMap::new(),
        };
        match c.boot(programs).await {
            Ok(()) => Ok(c),
            Err(e) => {
                // Keep the logs of a cluster that would not start.
                c.keep = true;
                Err(e.context(format!("cluster start failed; logs in {}", dir.display())))
            }
        }
    }

    async fn boot(&mut self, programs: &Programs) -> Result<()> {
        let c = self;
        let dir = c.dir.clone();
        for role in Role::ALL {
            c.ports.insert(role, free_port()?);
        }
        let port = |role: Role| c.ports.get(&role).copied().unwrap_or_default();
        let (redis, mariadb, broker) = (port(Role::Redis), port(Role::Mariadb), port(Role::Broker));
        let (http, ws1, ws2) = (port(Role::Control), port(Role::Edge1), port(Role::Edge2));
        let grpc = free_port()?;

        // Redis without persistence: the system must survive it losing everything.
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        c.add(
            Role::Redis,
            "redis-server".into(),
            &[
                "--port",
                &redis.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            vec![],
            &redis_dir,
        )?;

        // MariaDB in its own data dir, as the current user; a crash and restart
        // runs InnoDB recovery on the same files.
        let data = dir.join("mysql");
        let datadir = format!("--datadir={}", data.display());
        let socket = format!("--socket={}", dir.join("mysql.sock").display());
        let ok = run_quiet(
            "mariadb-install-db",
            &[
                "--no-defaults",
                &datadir,
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ],
            &dir.join("mariadb-install.log"),
        )
        .context("mariadb-install-db (deploy/dev-stack up installs MariaDB)")?;
        anyhow::ensure!(
            ok,
            "mariadb-install-db failed; see {}/mariadb-install.log",
            dir.display()
        );
        c.add(
            Role::Mariadb,
            "mariadbd".into(),
            &[
                "--no-defaults",
                &datadir,
                &format!("--port={mariadb}"),
                &socket,
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                &format!("--pid-file={}", dir.join("mysql.pid").display()),
                "--innodb-buffer-pool-size=128M",
            ],
            vec![],
            &dir,
        )?;

        // The broker advertises its proxy: every Kafka client's traffic goes
        // through the proxy after bootstrap. sqlite storage keeps the log
        // across a kill -9 (a relative path: an absolute one failed).
        let broker_proxy = TcpListener::bind("127.0.0.1:0").await?;
        let broker_public = broker_proxy.local_addr()?.port();
        let broker_dir = dir.join("broker");
        std::fs::create_dir_all(&broker_dir)?;
        c.add(
            Role::Broker,
            programs.broker.clone(),
            &[
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{broker}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{broker_public}"),
                "--storage-engine",
                "sqlite://broker.db",
            ],
            vec![],
            &broker_dir,
        )?;
        for (role, p) in [
            (Role::Redis, redis),
            (Role::Mariadb, mariadb),
            (Role::Broker, broker),
        ] {
            anyhow::ensure!(
                wait_port(p, Duration::from_secs(60)).await,
                "{} did not open port {p}; see {}",
                role.name(),
                dir.join(format!("{}.log", role.name())).display()
            );
        }
        c.mariadb_account(&socket)?;

        c.proxies
            .push((Dep::Mariadb, Proxy::start(loopback(mariadb)).await?));
        c.proxies
            .push((Dep::Redis, Proxy::start(loopback(redis)).await?));
        c.proxies
            .push((Dep::Broker, Proxy::on(broker_proxy, loopback(broker))?));
        let via = |dep: Dep| c.proxy(dep).map(|p| p.addr().port()).unwrap_or_default();
        let (db_p, redis_p, broker_p) = (via(Dep::Mariadb), via(Dep::Redis), via(Dep::Broker));

        let secret = uuid::Uuid::new_v4().simple().to_string();
        let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let control_env = env(&[
            ("GOCHAT_LOG", "info".into()),
            ("GOCHAT_SERVICES", "logic,repo,task".into()),
            ("GOCHAT_HTTP__ADDR", format!("127.0.0.1:{http}")),
            ("GOCHAT_GRPC__ADDR", format!("127.0.0.1:{grpc}")),
            (
                "GOCHAT_HTTP__PUBLIC_WS_URL",
                format!("ws://{{host}}:{ws1}/ws"),
            ),
            (
                "GOCHAT_DATABASE__URL",
                format!("mysql://chaos:chaos@127.0.0.1:{db_p}/gochat"),
            ),
            ("GOCHAT_REDIS__URL", format!("redis://127.0.0.1:{redis_p}")),
            ("GOCHAT_KAFKA__BROKERS", format!("127.0.0.1:{broker_p}")),
            ("GOCHAT_AUTH__JWT_SECRET", secret.clone()),
            ("GOCHAT_AUTH__ARGON2_MEMORY_KIB", "1024".into()),
            ("GOCHAT_AUTH__ARGON2_ITERATIONS", "1".into()),
            ("GOCHAT_LOGIC__SENDS_PER_SECOND", "1000".into()),
            // Every chaos client comes from 127.0.0.1: the per-address
            // limits would measure themselves, not the faults.
            ("GOCHAT_LIMITS__LOGINS_PER_ADDRESS_PER_MINUTE", "0".into()),
            (
                "GOCHAT_LIMITS__REGISTRATIONS_PER_ADDRESS_PER_MINUTE",
                "0".into(),
            ),
            (
                "GOCHAT_LOGIC__MEDIA_DIR",
                dir.join("media").display().to_string(),
            ),
        ]);
        c.add(
            Role::Control,
            programs.gochat.clone(),
            &["control"],
            control_env,
            &dir,
        )?;
        c.http = format!("http://127.0.0.1:{http}");
        c.wait_ready(Role::Control, Duration::from_secs(120))
            .await?;
        for (n, (role, ws)) in [(Role::Edge1, ws1), (Role::Edge2, ws2)]
            .into_iter()
            .enumerate()
        {
            let edge_env = env(&[
                ("GOCHAT_LOG", "info".into()),
                ("GOCHAT_EDGE_GATEWAY_ID", format!("gw{}", n + 1)),
                ("GOCHAT_EDGE_CORES", "2".into()),
                ("GOCHAT_EDGE_WS__ADDR", format!("127.0.0.1:{ws}")),
                ("GOCHAT_EDGE_AUTH__JWT_SECRET", secret.clone()),
                ("GOCHAT_EDGE_REPO_URL", format!("http://127.0.0.1:{grpc}")),
                (
                    "GOCHAT_EDGE_KAFKA__BROKERS",
                    format!("127.0.0.1:{broker_p}"),
                ),
                (
                    "GOCHAT_EDGE_REDIS__URL",
                    format!("redis://127.0.0.1:{redis}"),
                ),
            ]);
            c.add(role, programs.gochat.clone(), &["edge"], edge_env, &dir)?;
            c.ws[n] = format!("ws://127.0.0.1:{ws}/ws");
        }
        c.wait_ready(Role::Edge1, Duration::from_secs(60)).await?;
        c.wait_ready(Role::Edge2, Duration::from_secs(60)).await
    }

    fn add(
        &mut self,
        role: Role,
        program: PathBuf,
        args: &[&str],
        env: Vec<(String, String)>,
        cwd: &Path,
    ) -> Result<()> {
        let mut p = Proc {
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            cwd: cwd.to_owned(),
            log: self.dir.join(format!("{}.log", role.name())),
            child: None,
        };
        p.spawn()?;
        self.procs.insert(role, p);
        Ok(())
    }

    /// A user for control, made over the root socket (the proxy carries only
    /// TCP), and the database.
    fn mariadb_account(&self, socket: &str) -> Result<()> {
        let sql = "CREATE USER IF NOT EXISTS 'chaos'@'%' IDENTIFIED BY 'chaos';
            GRANT ALL PRIVILEGES ON *.* TO 'chaos'@'%';
            CREATE DATABASE IF NOT EXISTS gochat CHARACTER SET utf8mb4;";
        let log = self.dir.join("mariadb-setup.log");
        for _ in 0..60 {
            if run_quiet(
                "mariadb",
                &["--no-defaults", socket, "-uroot", "-e", sql],
                &log,
            )? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!(
            "could not create the MariaDB account; see {}",
            log.display()
        )
    }

    /// The proxy in front of `dep`.
    pub fn proxy(&self, dep: Dep) -> Option<&Proxy> {
        self.proxies.iter().find(|(d, _)| *d == dep).map(|(_, p)| p)
    }

    /// kill -9.
    pub fn kill(&mut self, role: Role) {
        if let Some(p) = self.procs.get_mut(&role) {
            p.kill();
        }
    }

    /// Starts `role` again with its first command line (after a kill).
    pub fn restart(&mut self, role: Role) -> Result<()> {
        let p = self.procs.get_mut(&role).context("unknown process")?;
        p.kill();
        p.spawn()
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn pause(&mut self, role: Role, stop: bool) -> Result<()> {
        let p = self.procs.get(&role).context("unknown process")?;
        p.signal(if stop { "-STOP" } else { "-CONT" })
    }

    /// The log file of `role`.
    pub fn log_of(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.log", role.name()))
    }

    /// Waits until `role` answers: control's `/readyz` is 200, anything else
    /// accepts on its port.
    pub async fn wait_ready(&mut self, role: Role, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let port = self.ports.get(&role).copied().unwrap_or_default();
        loop {
            if let Some(p) = self.procs.get_mut(&role)
                && let Some(why) = p.exited()
            {
                bail!(
                    "{} exited ({why}); see {}",
                    role.name(),
                    self.log_of(role).display()
                );
            }
            let ready = if role == Role::Control {
                matches!(http.get(format!("{}/readyz", self.http)).send().await,
                    Ok(r) if r.status() == 200)
            } else {
                TcpStream::connect(loopback(port)).await.is_ok()
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} not ready after {within:?}", role.name());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// kill -9 and restart control and both gateways, and wait until they
    /// answer: fresh Kafka producers and consumers after a failed scenario.
    pub async fn reset(&mut self) -> Result<()> {
        for role in [Role::Control, Role::Edge1, Role::Edge2] {
            self.restart(role)?;
        }
        for role in [Role::Control, Role::Edge1, Role::Edge2] {
            self.wait_ready(role, Duration::from_secs(90)).await?;
        }
        Ok(())
    }

    /// Processes that exited by themselves (not killed by the checker).
    pub fn exited(&mut self) -> Vec<&'static str> {
        Role::ALL
            .iter()
            .filter_map(|r| {
                let child = self.procs.get_mut(r)?.child.as_mut()?;
                matches!(child.try_wait(), Ok(Some(_))).then_some(r.name())
            })
            .collect()
    }

    /// Before a scenario: every proxy passes, every process runs (one that
    /// died by itself is reported and started again) and answers.
    pub async fn heal_all(&mut self, within: Duration) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (_, proxy) in &self.proxies {
            proxy.set(crate::proxy::Setting::PASS);
        }
        for role in Role::ALL {
            let _ = self.pause(role, false);
            let exited = self.procs.get_mut(&role).and_then(Proc::exited);
            if let Some(why) = exited {
                notes.push(format!("{} had exited ({why}); restarted", role.name()));
                self.restart(role)?;
            }
        }
        for role in Role::ALL {
            self.wait_ready(role, within).await?;
        }
        Ok(notes)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Gateways and control first, so they do not log a storm of
        // dependency errors while the dependencies go.
        for role in Role::ALL.iter().rev() {
            if let Some(p) = self.procs.get_mut(role) {
                if p.child.is_some() {
                    let _ = p.signal("-CONT");
                }
                p.kill();
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
