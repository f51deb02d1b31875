//! Uploaded files: stored under `logic.media_dir` with names we make
//! (a uuid and a short extension), served back at `/media/{name}` to a
//! signed link or a signed-in user; which types are taken.

use std::path::PathBuf;

use super::{Logic, LogicError, LogicResult};

const MAX_NAME: usize = 64;
const MAX_EXTENSION: usize = 8;

/// A stored upload.
#[derive(Debug)]
pub struct MediaFile {
    /// Where clients fetch it (`/media/{name}`).
    pub url: String,
    /// Bytes.
    pub size: usize,
    /// From the extension.
    pub mime_type: &'static str,
}

/// The content type of a stored file, from its extension.
pub fn mime_of(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("m4a") => "audio/mp4",
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("zip") => "application/zip",
        Some("gz" | "tgz") => "application/gzip",
        Some("tar") => "application/x-tar",
        Some("7z") => "application/x-7z-compressed",
        _ => "application/octet-stream",
    }
}

/// Does `data` start the way a file of image type `ext` must? `None` when
/// `ext` is not an image type (nothing to check).
fn image_content_matches(ext: &str, data: &[u8]) -> Option<bool> {
    Some(match ext {
        "png" => data.starts_with(b"\x89PNG"),
        "jpg" | "jpeg" => data.starts_with(&[0xFF, 0xD8, 0xFF]),
        "gif" => data.starts_with(b"GIF8"),
        "webp" => data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP",
        _ => return None,
    })
}

/// Served inline (shown in the page) rather than as a download: images only.
pub fn shown_inline(mime: &str) -> bool {
    mime.starts_with("image/")
}

fn io_error(e: std::io::Error) -> LogicError {
    LogicError::Internal(Box::new(e))
}

impl Logic {
    fn media_dir(&self) -> &PathBuf {
        &self.config.media_dir
    }

    /// Stores an upload; `original` (the client's file name) only lends its extension.
    pub async fn store_media(&self, original: &str, data: &[u8]) -> LogicResult<MediaFile> {
        if data.is_empty() {
            return Err(LogicError::BadRequest("the file is empty".into()));
        }
        // The type is the one the file will be served as (from its name).
        let kind = mime_of(original);
        let bare = kind.split(';').next().unwrap_or(kind);
        if !self.upload_types.iter().any(|t| t == bare) {
            return Err(LogicError::UnsupportedType(format!(
                "files of type {bare} are not taken"
            )));
        }
        let ext: String = original
            .rsplit_once('.')
            .map(|(_, e)| {
                e.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(MAX_EXTENSION)
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        // A file named like an image is served as one, inline: it must be one
        // (HTML named cat.png would otherwise be a page on our origin for
        // any browser that sniffs).
        if image_content_matches(&ext, data) == Some(false) {
            return Err(LogicError::BadRequest(format!(
                "the file's content is not a {ext} image"
            )));
        }
        let stem = uuid::Uuid::new_v4().simple().to_string();
        let name = if ext.is_empty() {
            stem
        } else {
            format!("{stem}.{ext}")
        };
        tokio::fs::create_dir_all(self.media_dir())
            .await
            .map_err(io_error)?;
        tokio::fs::write(self.media_dir().join(&name), data)
            .await
            .map_err(io_error)?;
        Ok(MediaFile {
            url: self.media_links.sign(&format!("/media/{name}")),
            size: data.len(),
            mime_type: mime_of(&name),
        })
    }

    /// `url` as clients should get it: an upload's link signed afresh
    /// (profiles and history keep working past a link's lifetime); any
    /// other URL unchanged.
    pub fn media_url(&self, url: &str) -> String {
        self.media_links.sign(url)
    }

    /// Does the link `exp`/`sig` open upload `name` now?
    pub fn media_link_valid(&self, name: &str, exp: u64, sig: &str) -> bool {
        self.media_links.verify(name, exp, sig)
    }

    /// A stored file's bytes and content type.
    pub async fn read_media(&self, name: &str) -> LogicResult<(Vec<u8>, &'static str)> {
        let not_found = || LogicError::NotFound("no such file".into());
        // Names are ours (uuid + short extension): anything else cannot be a file we wrote.
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
            || name.starts_with('.')
        {
            return Err(not_found());
        }
        let data = tokio::fs::read(self.media_dir().join(name))
            .await
            .map_err(|_| not_found())?;
        Ok((data, mime_of(name)))
    }
}

/// Signed links to uploads (PROTOCOL v1.1 §6.6): `/media/{name}?exp=&sig=`,
/// where `sig` is an HMAC-SHA256 of the name and expiry under the token
/// secret, so a link works for whoever holds it until it expires, and no
/// longer than that.
pub struct MediaLinks {
    key: Vec<u8>,
    lifetime_secs: u64,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl MediaLinks {
    /// Links under `secret`, valid `lifetime_secs` from signing.
    pub fn new(secret: &str, lifetime_secs: u64) -> Self {
        // A label keeps these signatures apart from anything else the
        // token secret signs.
        let mut key = b"gochat media link v1:".to_vec();
        key.extend_from_slice(secret.as_bytes());
        Self { key, lifetime_secs }
    }

    fn mac(&self, name: &str, exp: u64) -> HmacSha256 {
        use hmac::Mac;
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(name.as_bytes());
        mac.update(b":");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// `url` signed afresh if it is one of ours (`/media/…`, any old
    /// signature dropped); anything else unchanged.
    pub fn sign(&self, url: &str) -> String {
        use base64::Engine;
        use hmac::Mac;
        let Some(rest) = url.strip_prefix("/media/") else {
            return url.to_owned();
        };
        let name = rest.split('?').next().unwrap_or(rest);
        let exp = unix_now().saturating_add(self.lifetime_secs);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(name, exp).finalize().into_bytes());
        format!("/media/{name}?exp={exp}&sig={sig}")
    }

    /// Is `sig` this name's signature for `exp`, and `exp` still ahead?
    pub fn verify(&self, name: &str, exp: u64, sig: &str) -> bool {
        use base64::Engine;
        use hmac::Mac;
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        exp > unix_now() && self.mac(name, exp).verify_slice(&sig).is_ok()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::MediaLinks;

    #[test]
    fn a_link_verifies_until_it_expires_and_only_for_its_name() {
        let links = MediaLinks::new("secret-secret-secret-secret-secret", 60);
        let url = links.sign("/media/abc.png?exp=1&sig=old");
        let query = url.strip_prefix("/media/abc.png?exp=").unwrap_or_default();
        let (exp, sig) = query.split_once("&sig=").unwrap_or_default();
        let exp: u64 = exp.parse().unwrap_or_default();
        assert!(links.verify("abc.png", exp, sig));
        assert!(!links.verify("abd.png", exp, sig), "another name");
        assert!(!links.verify("abc.png", exp + 1, sig), "another expiry");
        assert!(!links.verify("abc.png", exp, "AAAA"), "a forged signature");
        let other = MediaLinks::new("another-secret-another-secret-xx", 60);
        assert!(!other.verify("abc.png", exp, sig), "another secret");
        let expired = MediaLinks::new("secret-secret-secret-secret-secret", 0);
        let url = expired.sign("/media/abc.png");
        let (exp, sig) = url
            .strip_prefix("/media/abc.png?exp=")
            .and_then(|q| q.split_once("&sig="))
            .unwrap_or_default();
        assert!(!expired.verify("abc.png", exp.parse().unwrap_or_default(), sig));
        assert_eq!(
            links.sign("https://example.com/a.png"),
            "https://example.com/a.png"
        );
    }
}
