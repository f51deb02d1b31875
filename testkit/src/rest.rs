//! A REST client for tests that behaves like a careful client of
//! docs/protocol.md: register, log in, then call `/api/v1` with the bearer
//! token; every answer comes back as (status, JSON body or null).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The password every test user gets.
pub const PASSWORD: &str = "password123";

/// A registered and logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// Decimal id.
    pub id: String,
    /// Username.
    pub name: String,
    /// Bearer token.
    pub token: String,
}

/// Where a GoChat REST API answers, and the client to call it with.
#[derive(Debug, Clone)]
pub struct Rest {
    /// e.g. `http://127.0.0.1:8080` (no `/api/v1`).
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Rest {
    /// A client for the API at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::new(),
        }
    }

    /// The URL of an API path (`/users/me` → `{base}/api/v1/users/me`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Registers `name` (an existing account is fine) and logs in on the
    /// device `default`.
    pub async fn user(&self, name: &str) -> Result<User> {
        self.user_on(name, "default").await
    }

    /// Registers `name` (an existing account is fine) and logs in on `device`.
    pub async fn user_on(&self, name: &str, device: &str) -> Result<User> {
        let r = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await?;
        if r.status() != 201 && r.status() != 409 {
            bail!("register {name}: {}", r.status());
        }
        self.login(name, device).await
    }

    /// Logs an existing user in on `device`.
    pub async fn login(&self, name: &str, device: &str) -> Result<User> {
        let r: Value = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"username": name, "password": PASSWORD, "device_id": device}))
            .send()
            .await?
            .json()
            .await?;
        Ok(User {
            id: r["user_id"].as_str().context("user_id")?.to_owned(),
            name: name.to_owned(),
            token: r["token"].as_str().context("token")?.to_owned(),
        })
    }

    /// `POST` a JSON body without a token (register, login).
    pub async fn post_anonymous(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        answer(self.http.post(self.url(path)).json(&body).send().await?).await
    }

    /// `GET` as `user`.
    pub async fn get(&self, user: &User, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await?;
        answer(r).await
    }

    /// `POST` a JSON body as `user`.
    pub async fn post(&self, user: &User, path: &str, body: Value) -> Result<(u16, Value)> {
        self.with_body(reqwest::Method::POST, user, path, body)
            .await
    }

    /// `PUT` a JSON body as `user`.
    pub async fn put(&self, user: &User, path: &str, body: Value) -> Result<(u16, Value)> {
        self.with_body(reqwest::Method::PUT, user, path, body).await
    }

    /// `PATCH` a JSON body as `user`.
    pub async fn patch(&self, user: &User, path: &str, body: Value) -> Result<(u16, Value)> {
        self.with_body(reqwest::Method::PATCH, user, path, body)
            .await
    }

    async fn with_body(
        &self,
        method: reqwest::Method,
        user: &User,
        path: &str,
        body: Value,
    ) -> Result<(u16, Value)> {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await?;
        answer(r).await
    }

    /// `DELETE` as `user`.
    pub async fn delete(&self, user: &User, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .delete(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await?;
        answer(r).await
    }

    /// Makes `a` and `b` friends with consent: `a` asks, `b` accepts.
    pub async fn befriend(&self, a: &User, b: &User) -> Result<()> {
        let (status, asked) = self.post(a, "/friends", json!({"user_id": b.id})).await?;
        anyhow::ensure!(status == 202, "friend request: {status} {asked}");
        let id = asked["request_id"].as_str().unwrap_or_default();
        let path = format!("/friend-requests/{id}/accept");
        let (status, body) = self.post(b, &path, Value::Null).await?;
        anyhow::ensure!(status == 200, "accept: {status} {body}");
        Ok(())
    }

    /// `POST /messages` from `user`.
    pub async fn send(&self, user: &User, body: Value) -> Result<(u16, Value)> {
        self.post(user, "/messages", body).await
    }
}

async fn answer(r: reqwest::Response) -> Result<(u16, Value)> {
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}
