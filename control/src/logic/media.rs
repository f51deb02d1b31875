//! Uploaded files: stored under `logic.media_dir` with names we make
//! (a uuid and a short extension), served back at `/media/{name}`.

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
            url: format!("/media/{name}"),
            size: data.len(),
            mime_type: mime_of(&name),
        })
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
