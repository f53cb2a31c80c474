//! The engine's identity operations that change the graph on request: undoing a merge.

use rapport_core::{Actor, AuditEntry, ProfileId, WorkspaceId};
use rapport_store::{StoreError, UnmergeOutcome, UnmergeRequest};
use serde_json::json;

use crate::engine::Engine;

impl Engine {
    /// Undoes one merge of a profile, audited with who asked (see `Store::unmerge`).
    pub async fn unmerge(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        request: UnmergeRequest,
        actor: Actor,
    ) -> Result<UnmergeOutcome, StoreError> {
        let entry = AuditEntry::new(
            Some(workspace.clone()),
            actor,
            "profile.unmerged",
            Some(profile.as_str().to_owned()),
            json!({"requested_merge": request.merge_id, "add_guard": request.add_guard}),
        );
        let outcome = self
            .store
            .unmerge(workspace, profile, request, entry)
            .await?;
        tracing::info!(
            customer_id = %outcome.survivor,
            restored = %outcome.restored,
            merge_id = outcome.merge_id,
            "profile unmerged"
        );
        Ok(outcome)
    }
}
