// Layer 3 (views): the sign-in / create-account screen: its two modes,
// client-side validation with an error under each field, and the server's
// refusals as plain words. Signing in itself is the session's (session.js).

import { $, $$, storage } from './util.js';
import { S } from './store.js';
import { enterApp, SESSION_KEY } from './session.js';
import { api } from './transport.js';

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

export function showAuth(mode = 'login', flash = '') {
  $('#main-screen').hidden = true;
  $('#auth-screen').hidden = false;
  setAuthMode(mode);
  if (flash) showAuthError(flash);
  $('#auth-username').focus();
}

function setAuthMode(mode) {
  const form = $('#auth-form');
  form.dataset.mode = mode;
  const reg = mode === 'register';
  $('#tab-login').setAttribute('aria-selected', String(!reg));
  $('#tab-register').setAttribute('aria-selected', String(reg));
  $('#auth-title').textContent = reg ? 'Create your account' : 'Welcome back';
  $('#auth-sub').textContent = reg ? 'Pick a username and a password to get started.' : 'Sign in to continue your conversations.';
  $('#auth-submit').textContent = reg ? 'Create account' : 'Sign in';
  $('#auth-switch-text').textContent = reg ? 'Already have an account?' : 'New to GoChat?';
  $('#auth-switch').textContent = reg ? 'Sign in' : 'Create an account';
  $('#auth-password').autocomplete = reg ? 'new-password' : 'current-password';
  clearAuthErrors();
}

function clearAuthErrors() {
  for (const el of $$('#auth-form .field-error')) el.textContent = '';
  for (const el of $$('#auth-form input')) el.removeAttribute('aria-invalid');
  $('#auth-error').hidden = true;
}

function fieldError(name, message) {
  const input = $(`#auth-${name}`);
  $(`#err-${name}`).textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', `err-${name}`);
}

function showAuthError(message) {
  const el = $('#auth-error');
  el.textContent = message;
  el.hidden = false;
}

function validateAuth(reg) {
  const username = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  let ok = true;
  if (!username) {
    fieldError('username', 'Enter your username.');
    ok = false;
  } else if (reg && !USERNAME_RE.test(username)) {
    fieldError('username', '3 to 32 characters: letters, digits, “_”, “.” or “-”.');
    ok = false;
  }
  if (!password) {
    fieldError('password', 'Enter your password.');
    ok = false;
  } else if (reg && (new TextEncoder().encode(password).length < 8 || password.length > 128)) {
    fieldError('password', 'At least 8 characters.');
    ok = false;
  }
  if (reg) {
    const nick = $('#auth-nickname').value.trim();
    if ([...nick].length > 50) {
      fieldError('nickname', 'At most 50 characters.');
      ok = false;
    }
    if ($('#auth-confirm').value !== password) {
      fieldError('confirm', 'The passwords do not match.');
      ok = false;
    }
  }
  return ok;
}

async function onAuthSubmit(ev) {
  ev.preventDefault();
  const reg = $('#auth-form').dataset.mode === 'register';
  clearAuthErrors();
  if (!validateAuth(reg)) {
    const bad = $('#auth-form [aria-invalid="true"]');
    if (bad) bad.focus();
    return;
  }
  const username = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  const btn = $('#auth-submit');
  btn.disabled = true;
  const label = btn.textContent;
  btn.textContent = reg ? 'Creating account…' : 'Signing in…';
  try {
    if (reg) {
      const nickname = $('#auth-nickname').value.trim();
      await api.post('/auth/register', nickname ? { username, password, nickname } : { username, password });
    }
    const res = await api.post('/auth/login', { username, password, device_id: 'web' });
    S.session = { token: res.token, user_id: res.user_id, expires_at: res.expires_at };
    storage.set(SESSION_KEY, S.session);
    $('#auth-password').value = '';
    $('#auth-confirm').value = '';
    await enterApp();
  } catch (e) {
    if (e.status === 409) fieldError('username', 'This username is taken. Try another one.');
    else if (e.status === 401) showAuthError('Wrong username or password.');
    else if (e.status === 400) showAuthError(e.message);
    else if (e.status === 429) showAuthError('Too many attempts. Wait a moment and try again.');
    else showAuthError(e.message || 'Something went wrong. Try again.');
  } finally {
    btn.disabled = false;
    btn.textContent = label;
  }
}

export function wireAuth() {
  $('#auth-form').addEventListener('submit', onAuthSubmit);
  $('#tab-login').addEventListener('click', () => setAuthMode('login'));
  $('#tab-register').addEventListener('click', () => setAuthMode('register'));
  $('#auth-switch').addEventListener('click', () => {
    setAuthMode($('#auth-form').dataset.mode === 'login' ? 'register' : 'login');
    $('#auth-username').focus();
  });
  for (const input of $$('#auth-form input')) {
    input.addEventListener('input', () => {
      input.removeAttribute('aria-invalid');
      const err = $(`#err-${input.name}`);
      if (err) err.textContent = '';
    });
  }
}
