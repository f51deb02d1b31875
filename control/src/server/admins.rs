//! The operators' accounts. `auth.admin_user_ids` names admins by id (what a
//! production deployment should use: an id cannot be registered by someone
//! else). `auth.admin_usernames` names them by username, which is only safe
//! if the account exists before anyone can register: with
//! `auth.admin_password_file` set, [`ensure_admin_accounts`] creates each
//! missing one before the listeners open, with a generated password written
//! (owner-only) to that file. Without the file, a username on the list could
//! be taken by whoever registers it first, so the start says so loudly.

use std::fmt::Write as _;
use std::path::Path;

use super::StartError;
use crate::config::AuthConfig;
use crate::logic::auth::Authenticator;
use crate::repo::{RepoError, UserRepo};

/// Creates the missing accounts of `auth.admin_usernames` (when
/// `auth.admin_password_file` is set) and writes their passwords there.
pub(super) async fn ensure_admin_accounts(
    auth: &AuthConfig,
    repo: &dyn UserRepo,
) -> Result<(), StartError> {
    if auth.admin_usernames.is_empty() {
        return Ok(());
    }
    let Some(path) = &auth.admin_password_file else {
        tracing::warn!(
            usernames = ?auth.admin_usernames,
            "auth.admin_usernames without auth.admin_password_file: whoever registers \
             one of these names first is an admin; name admins by id (auth.admin_user_ids) \
             or set the file so the accounts are made before anyone can register"
        );
        return Ok(());
    };
    let hasher = Authenticator::new(auth).map_err(|e| StartError::Config(e.to_string()))?;
    let mut created = String::new();
    for name in &auth.admin_usernames {
        match repo.get_user_auth(name).await {
            Ok(_) => continue,
            Err(RepoError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let password = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let hash = hasher
            .hash_password(&password)
            .map_err(|e| StartError::Config(e.to_string()))?;
        match repo.create_user(name, &hash, "").await {
            Ok(_) => {}
            // Another logic process starting beside this one made it first.
            Err(RepoError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        let _ = writeln!(created, "username: {name}\npassword: {password}");
    }
    if created.is_empty() {
        return Ok(());
    }
    write_private(path, &created)
        .map_err(|e| StartError::Config(format!("writing {}: {e}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        "admin account created; its password is in this file: keep it safe"
    );
    Ok(())
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
