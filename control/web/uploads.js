// Layer 2 (services): uploads. A file goes to /uploads first, then its URL is
// sent as an image or file message (outbox.js). While it uploads, a
// placeholder row shows in the chat (a local preview for a photo).

import { toastError } from './toasts.js';
import { uuid } from './util.js';
import { queueSend } from './outbox.js';
import { api } from './transport.js';
import { changed, S } from './store.js';

async function imageSize(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return { width: img.naturalWidth, height: img.naturalHeight };
  } catch {
    return { width: 0, height: 0 };
  } finally {
    URL.revokeObjectURL(url);
  }
}

export async function upload(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'upload');
  return api.request('POST', '/uploads', form);
}

export async function sendFile(file, kind) {
  const c = S.convs.get(S.current);
  if (!c || !file) return;
  if (kind === 'image' && !file.type.startsWith('image/')) kind = 'file';
  const id = uuid();
  const previewUrl = kind === 'image' ? URL.createObjectURL(file) : null;
  const dims = kind === 'image' ? await imageSize(file) : null;
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  const metadata = kind === 'image'
    ? { width: dims.width, height: dims.height, size: file.size, format: ext }
    : { filename: file.name, size: file.size, mime_type: file.type || 'application/octet-stream' };
  const u = { id, cid: c.cid, kind, previewUrl, metadata, created: Date.now() };
  S.uploads.push(u);
  S.stickToBottom = true;
  changed();
  try {
    const res = await upload(file);
    metadata.size = res.size ?? metadata.size;
    if (kind === 'file') metadata.mime_type = res.mime_type || metadata.mime_type;
    queueSend(c, kind, res.url, metadata, []);
  } catch (e) {
    toastError(e, kind === 'image' ? 'Could not upload the photo' : 'Could not upload the file');
  } finally {
    S.uploads = S.uploads.filter((x) => x.id !== id);
    if (previewUrl) setTimeout(() => URL.revokeObjectURL(previewUrl), 5000);
    changed();
  }
}
