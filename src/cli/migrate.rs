//! `anchorage migrate up|down|status`.

use clap::Subcommand;

use crate::{config::Config, db::migrate, error::Result};

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations and the job-queue schema, then grant the server's role
    /// (the user in postgres.dsn) access. Safe to run from many nodes at once.
    Up,
    /// Revert the newest migration (or all of them with --all).
    Down {
        /// Revert every migration.
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
}

pub async fn run(cmd: MigrateCommand, config: Config) -> Result<()> {
    let migration_dsn = config
        .postgres
        .migration_dsn
        .as_ref()
        .unwrap_or(&config.postgres.dsn)
        .expose()
        .to_string();
    match cmd {
        MigrateCommand::Up => {
            let role = migrate::dsn_user(config.postgres.dsn.expose());
            let applied = migrate::up(&migration_dsn, role.as_deref()).await?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
        }
        MigrateCommand::Down { all } => {
            let reverted = migrate::down(&migration_dsn, all).await?;
            if reverted.is_empty() {
                println!("nothing to revert");
            }
            for name in reverted {
                println!("reverted {name}");
            }
        }
        MigrateCommand::Status => {
            for m in migrate::status(&migration_dsn).await? {
                println!("[{}] {}", if m.applied { "x" } else { " " }, m.name);
            }
        }
    }
    Ok(())
}
