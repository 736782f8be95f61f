//! The admin API of a running `wasmless up`, as the verbs use it: apply
//! objects, read a Function back, delete objects, list.

use http::Method;
use serde::de::DeserializeOwned;

use crate::client::{Admin, Answer, send};
use crate::up::ApplyAnswer;

use super::target::TargetArgs;

/// A running `up`.
pub struct Local {
    admin: Admin,
}

impl Local {
    /// The `up` that `target` names: its function port's URL, and its
    /// admin socket (given, or found from the URL's port).
    pub fn new(target: &TargetArgs) -> anyhow::Result<Self> {
        let admin = Admin::new(&target.url, target.admin_socket.as_deref())?;
        Ok(Self { admin })
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        self.admin.url()
    }

    /// Sends an admin request for `path` (below `/_wasmless/`).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        self.admin.send(method, path, content_type, body).await
    }

    /// Applies objects (each serialized as JSON, one YAML document each):
    /// all are checked before any is applied. Prints the notes of kubeless
    /// conversions.
    pub async fn apply(&self, objects: &[serde_json::Value]) -> anyhow::Result<ApplyAnswer> {
        let body: Vec<String> = objects
            .iter()
            .map(|o| serde_json::to_string(o).expect("a JSON value serializes"))
            .collect();
        let answer = self
            .admin(
                Method::PUT,
                "apply",
                Some("application/yaml"),
                body.join("\n---\n").into_bytes(),
            )
            .await?;
        if !answer.status.is_success() && answer.status != http::StatusCode::UNPROCESSABLE_ENTITY {
            anyhow::bail!("{}", String::from_utf8_lossy(&answer.body).trim());
        }
        let applied: ApplyAnswer = serde_json::from_slice(&answer.body)?;
        for note in &applied.notes {
            eprintln!("note: {note}");
        }
        Ok(applied)
    }

    /// GETs an admin path as JSON; `None` on 404.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Option<T>> {
        let answer = self.admin(Method::GET, path, None, Vec::new()).await?;
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(
            answer.status.is_success(),
            "{}",
            String::from_utf8_lossy(&answer.body).trim()
        );
        Ok(Some(serde_json::from_slice(&answer.body)?))
    }

    /// Deletes `KIND/NAME`, applied through the admin API.
    pub async fn delete(&self, kind: &str, name: &str) -> anyhow::Result<()> {
        let answer = self
            .admin(
                Method::DELETE,
                &format!("objects/{kind}/{name}"),
                None,
                Vec::new(),
            )
            .await?;
        anyhow::ensure!(
            answer.status.is_success(),
            "{}",
            String::from_utf8_lossy(&answer.body).trim()
        );
        Ok(())
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let answer = send(
            Method::GET,
            &format!("{}/metrics", self.url()),
            None,
            Vec::new(),
        )
        .await?;
        anyhow::ensure!(
            answer.status.is_success(),
            "/metrics answered {}",
            answer.status
        );
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }
}
